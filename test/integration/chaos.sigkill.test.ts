import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { focusedProfile } from '../../chaos/lib/profile.js';
import { formatReport } from '../../chaos/lib/report.js';
import { runChaos } from '../../chaos/lib/run-chaos.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * SIGKILL to a replica mid-run (calls in flight are cut; agents fail over and retry, and the
 * checker resolves the ambiguous ones from the events table): the other replica carries on,
 * the dead one's job locks are released after worker.dead_after_ms, and every task finishes
 * correctly soon after.
 */
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describe('chaos: SIGKILL', () => {
  it('the other replicas finish every task correctly', async () => {
    const report = await runChaos({ profile: focusedProfile('sigkill', { atMs: 3_000 }), databaseUrl: database.url });
    if (!report.ok) console.log(formatReport(report));
    expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.violations.join('; ')}`)).toEqual([]);
    expect(report.faults.find((f) => f.name === 'sigkill')?.detail).toMatch(/killed/);
    expect(report.timings.drainAfterLastFaultMs).toBeLessThan(30_000);
  }, 90_000);
});
