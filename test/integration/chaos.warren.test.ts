import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { focusedProfile } from '../../chaos/lib/profile.js';
import { runChaosChecked } from '../helpers/chaos.js';
import { useTestDatabase } from '../helpers/database.js';

/**
 * Warren answers 500 for 10 s. Replicas keep the last known statuses for a grace window
 * (max(3 x state_ttl_ms, 4 x timeout_ms) = 4 s here), then treat the agents as unknown: new tasks
 * wait instead of going to agents nobody can vouch for. When Warren answers again assignment
 * resumes by itself and every task finishes as its agents decided.
 */
const database = useTestDatabase();

const GRACE_MS = 4_000;
// The grace counts from Warren's last good answer, up to one state_ttl_ms before the fault began.
const STATE_TTL_MS = 500;

describe('chaos: Warren failing', () => {
  it('tasks wait while Warren is down past the grace window, then resume', async () => {
    const report = await runChaosChecked(focusedProfile('warren', { atMs: 2_000, downMs: 10_000, feedMs: 12_000, tasks: 200 }), database().url);
    const fault = report.faults.find((f) => f.name === 'warren')!;
    const db = database().handle.db;
    // Statuses are kept through the grace window; once every agent is unknown (the replicas wrote
    // it), no transaction that starts later can assign (an event's created_at is its
    // transaction's start), until Warren is back.
    expect(fault.allUnknownAt, fault.detail).toBeDefined();
    const quietFrom = fault.allUnknownAt!;
    expect(quietFrom - fault.wallStart).toBeGreaterThanOrEqual(GRACE_MS - STATE_TTL_MS);
    const assignedIn = async (from: number, to: number) =>
      (
        await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM dispatch_task_events
           WHERE event = 'assigned' AND created_at >= to_timestamp(${from / 1000}) AND created_at < to_timestamp(${to / 1000})`.execute(db)
      ).rows[0]!.n;
    const pendingDuringOutage = (
      await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM dispatch_task_events
         WHERE event = 'created' AND created_at >= to_timestamp(${quietFrom / 1000}) AND created_at < to_timestamp(${fault.wallEnd / 1000})`.execute(db)
    ).rows[0]!.n;
    expect(pendingDuringOutage).toBeGreaterThan(0);
    expect(await assignedIn(quietFrom, fault.wallEnd)).toBe(0);
    // ...and they are placed soon after it answers again.
    expect(await assignedIn(fault.wallEnd, fault.wallEnd + 5_000)).toBeGreaterThan(0);
  }, 90_000);
});
