import { describe, expect, it } from 'vitest';
import { focusedProfile } from '../../chaos/lib/profile.js';
import { runChaosChecked } from '../helpers/chaos.js';
import { useTestDatabase } from '../helpers/database.js';

/**
 * SIGTERM to a replica mid-run: it finishes what it is doing and exits 0 without logging errors
 * (checked by the fault), a fresh replica takes its slot, and no task is lost or finished wrongly.
 */
const database = useTestDatabase();

describe('chaos: SIGTERM', () => {
  it('the replica exits 0 and no task is lost', async () => {
    const report = await runChaosChecked(focusedProfile('sigterm', { atMs: 3_000 }), database().url);
    expect(report.faults.find((f) => f.name === 'sigterm')?.detail).toMatch(/exited 0/);
    expect(report.figures?.byStatus.completed).toBeGreaterThan(0);
  }, 90_000);
});
