import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { focusedProfile } from '../../chaos/lib/profile.js';
import { runChaosChecked } from '../helpers/chaos.js';
import { useTestDatabase } from '../helpers/database.js';

/**
 * NATS goes down for a while mid-run. Events recorded meanwhile wait in the outbox; when the
 * server is back every event of dispatch_task_events is in JetStream exactly once (by event id),
 * in order per task, and work never stopped.
 */
const database = useTestDatabase();

describe('chaos: NATS down', () => {
  it('events recorded during the outage are all delivered once, in order, after it', async () => {
    const report = await runChaosChecked(focusedProfile('nats', { atMs: 2_000, downMs: 5_000 }), database().url);
    const fault = report.faults.find((f) => f.name === 'nats')!;
    // Work went on while NATS was down: those events could only reach the stream through the outbox.
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM dispatch_task_events
       WHERE created_at > to_timestamp(${fault.wallStart / 1000}) AND created_at < to_timestamp(${fault.wallEnd / 1000})`.execute(database().handle.db);
    expect(rows[0]!.n).toBeGreaterThan(50);
    expect(report.checks.find((c) => c.name.startsWith('events in JetStream'))!.summary).toMatch(/missing 0, duplicates 0/);
  }, 90_000);
});
