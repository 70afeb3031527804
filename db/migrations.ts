import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './migrations/0001_dispatch_foundation.js';
import * as m0002 from './migrations/0002_assignment_wakeups.js';
import * as m0003 from './migrations/0003_lifecycle_rules.js';
import * as m0004 from './migrations/0004_event_outbox.js';
import * as m0005 from './migrations/0005_unmatched_scan.js';
import * as m0006 from './migrations/0006_time_ordered_ids.js';
import * as m0007 from './migrations/0007_placement_in_audit_trail.js';
import * as m0008 from './migrations/0008_scope_counters.js';
import * as m0009 from './migrations/0009_credentials.js';

/**
 * Every migration, in order. Listed statically (not read from the folder at run time) so the
 * compiled service, kysely-ctl and the tests all see the same set. Forward-only: add a new
 * file and a line here; never edit one that has landed.
 */
export const migrations: Record<string, Migration> = {
  '0001_dispatch_foundation': m0001,
  '0002_assignment_wakeups': m0002,
  '0003_lifecycle_rules': m0003,
  '0004_event_outbox': m0004,
  '0005_unmatched_scan': m0005,
  '0006_time_ordered_ids': m0006,
  '0007_placement_in_audit_trail': m0007,
  '0008_scope_counters': m0008,
  '0009_credentials': m0009,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
