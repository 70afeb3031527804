import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { AGENT_SOURCES, AGENT_STATUSES, CREDENTIAL_ROLES, TASK_STATUSES } from '../../src/db/columns.js';
import { ADVISORY_LOCK, JOB, JOB_KEY, NOTIFY_CHANNEL } from '../../src/db/contract.js';
import { useTestDatabase } from '../helpers/database.js';

/**
 * The SQL functions of a migrated database use the job names, job-key prefixes and advisory lock
 * keys of src/db/contract.ts, and its CHECK constraints allow the values of src/db/columns.ts. They are read back from the catalogue, as the last migration left
 * them, so a value changed on one side only (TS, or a migration replacing a function) fails here.
 */

const database = useTestDatabase();

interface Uses {
  jobs: string[];
  jobKeys: string[];
  locks: number[];
}

const sorted = <T extends string | number>(values: Iterable<T>) => [...new Set(values)].sort();

/** What one function body names: quoted `word:word` literals (a trailing colon makes a job-key prefix) and advisory lock keys. */
function usesOf(body: string): Uses {
  const literals = [...body.matchAll(/'([a-z][a-z_-]*:[a-z_:-]*)'/g)].map((m) => m[1]!);
  return {
    jobs: sorted(literals.filter((l) => !l.endsWith(':'))),
    jobKeys: sorted(literals.filter((l) => l.endsWith(':'))),
    locks: sorted([...body.matchAll(/pg_(?:try_)?advisory_\w+\(\s*(\d+)/g)].map((m) => Number(m[1]))),
  };
}

describe('the database and src/db/contract.ts', () => {
  it('name the same jobs, job keys and advisory locks', async () => {
    const { rows } = await sql<{ name: string; body: string }>`
      SELECT p.proname AS name, p.prosrc AS body
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'public'`.execute(database().handle.db);
    const found: Record<string, Uses> = {};
    for (const { name, body } of rows) {
      const uses = usesOf(body);
      if (uses.jobs.length + uses.jobKeys.length + uses.locks.length > 0) found[name] = uses;
    }
    expect(found).toEqual({
      dispatch_request_assignment: {
        jobs: [],
        jobKeys: [],
        locks: sorted([ADVISORY_LOCK.assignerActive, ADVISORY_LOCK.assignerBarrier]),
      },
      dispatch_request_assignment_at: { jobs: [JOB.assignmentRun], jobKeys: [JOB_KEY.assignmentAt], locks: [] },
      dispatch_fold_scope_counters: { jobs: [], jobKeys: [], locks: [ADVISORY_LOCK.scopeCounterFolding] },
      dispatch_lock_assignable_agents: { jobs: [], jobKeys: [], locks: [ADVISORY_LOCK.assignerActive] },
      dispatch_lock_agents_for_pending_work: { jobs: [], jobKeys: [], locks: [ADVISORY_LOCK.assignerActive] },
      dispatch_lock_agents_and_claim: { jobs: [], jobKeys: [], locks: [ADVISORY_LOCK.assignerActive] },
      dispatch_lock_free_agents: { jobs: [], jobKeys: [], locks: [ADVISORY_LOCK.scopeControls] },
    });
  });

  it('notify on the channels the replicas listen to', async () => {
    const { rows } = await sql<{ name: string; channel: string }>`
      SELECT p.proname AS name, m[1] AS channel
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       CROSS JOIN LATERAL regexp_matches(p.prosrc, 'pg_notify\\(''([a-z_]+)''', 'g') AS m
       WHERE n.nspname = 'public' ORDER BY 1`.execute(database().handle.db);
    expect(rows).toEqual([
      { name: 'dispatch_notify_assignments', channel: NOTIFY_CHANNEL.assignments },
      { name: 'dispatch_notify_due', channel: NOTIFY_CHANNEL.due },
      { name: 'dispatch_request_assignment', channel: NOTIFY_CHANNEL.assign },
    ]);
  });

  it('has no two protocols sharing an advisory lock key', () => {
    const keys = Object.values(ADVISORY_LOCK).map(String);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('allow in text columns the values src/db/columns.ts types them with', async () => {
    const { rows } = await sql<{ name: string; definition: string }>`
      SELECT conname AS name, pg_get_constraintdef(oid) AS definition FROM pg_constraint
       WHERE conname IN ('dispatch_tasks_status_check', 'dispatch_agents_status_check', 'dispatch_agents_source_check',
                         'dispatch_credentials_role_check')`.execute(
      database().handle.db,
    );
    const allowed = Object.fromEntries(rows.map((r) => [r.name, [...r.definition.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1])]));
    expect(allowed).toEqual({
      dispatch_tasks_status_check: [...TASK_STATUSES],
      dispatch_agents_status_check: [...AGENT_STATUSES],
      dispatch_agents_source_check: [...AGENT_SOURCES],
      dispatch_credentials_role_check: [...CREDENTIAL_ROLES],
    });
  });
});
