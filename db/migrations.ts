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
import * as m0010 from './migrations/0010_assignment_stream.js';
import * as m0011 from './migrations/0011_scope_controls.js';
import * as m0012 from './migrations/0012_task_timing.js';
import * as m0013 from './migrations/0013_task_dependencies.js';
import * as m0014 from './migrations/0014_schedules.js';
import * as m0015 from './migrations/0015_trace_context.js';
import * as m0016 from './migrations/0016_task_readers.js';
import * as m0017 from './migrations/0017_claim_per_scope.js';
import * as m0018 from './migrations/0018_quiet_timeout_jobs.js';
import * as m0019 from './migrations/0019_wake_assigners_by_notify.js';
import * as m0020 from './migrations/0020_cached_trigger_plans.js';
import * as m0021 from './migrations/0021_locked_jobs_index.js';
import * as m0022 from './migrations/0022_agent_releases.js';
import * as m0023 from './migrations/0023_timeouts_from_deadlines.js';
import * as m0024 from './migrations/0024_feed_ignores_other_databases.js';
import * as m0025 from './migrations/0025_inlined_sql_functions.js';
import * as m0026 from './migrations/0026_batch_statements_as_functions.js';
import * as m0027 from './migrations/0027_key_lookups_in_cached_plans.js';
import * as m0028 from './migrations/0028_agents_locked_only_with_work_pending.js';
import * as m0029 from './migrations/0029_claim_and_completion_planned_once.js';
import * as m0030 from './migrations/0030_batch_claim_beside_its_agents.js';
import * as m0031 from './migrations/0031_heartbeats_without_counting.js';
import * as m0032 from './migrations/0032_feed_read_by_transaction.js';
import * as m0033 from './migrations/0033_assignment_notifications_name_their_transaction.js';

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
  '0010_assignment_stream': m0010,
  '0011_scope_controls': m0011,
  '0012_task_timing': m0012,
  '0013_task_dependencies': m0013,
  '0014_schedules': m0014,
  '0015_trace_context': m0015,
  '0016_task_readers': m0016,
  '0017_claim_per_scope': m0017,
  '0018_quiet_timeout_jobs': m0018,
  '0019_wake_assigners_by_notify': m0019,
  '0020_cached_trigger_plans': m0020,
  '0021_locked_jobs_index': m0021,
  '0022_agent_releases': m0022,
  '0023_timeouts_from_deadlines': m0023,
  '0024_feed_ignores_other_databases': m0024,
  '0025_inlined_sql_functions': m0025,
  '0026_batch_statements_as_functions': m0026,
  '0027_key_lookups_in_cached_plans': m0027,
  '0028_agents_locked_only_with_work_pending': m0028,
  '0029_claim_and_completion_planned_once': m0029,
  '0030_batch_claim_beside_its_agents': m0030,
  '0031_heartbeats_without_counting': m0031,
  '0032_feed_read_by_transaction': m0032,
  '0033_assignment_notifications_name_their_transaction': m0033,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};
