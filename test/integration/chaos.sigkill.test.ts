import { describe, expect, it } from 'vitest';
import { focusedProfile } from '../../chaos/lib/profile.js';
import { runChaosChecked } from '../helpers/chaos.js';
import { useTestDatabase } from '../helpers/database.js';

/**
 * SIGKILL to a replica mid-run (calls in flight are cut; agents fail over and retry, and the
 * checker resolves the ambiguous ones from the events table): the other replica carries on,
 * the dead one's job locks are released after worker.dead_after_ms, and every task finishes
 * correctly soon after.
 */
const database = useTestDatabase();

describe('chaos: SIGKILL', () => {
  it('the other replicas finish every task correctly', async () => {
    const report = await runChaosChecked(focusedProfile('sigkill', { atMs: 3_000 }), database().url);
    expect(report.faults.find((f) => f.name === 'sigkill')?.detail).toMatch(/killed/);
    expect(report.timings.drainAfterLastFaultMs).toBeLessThan(30_000);
  }, 90_000);
});
