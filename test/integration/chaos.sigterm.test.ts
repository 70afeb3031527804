import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { focusedProfile } from '../../chaos/lib/profile.js';
import { formatReport } from '../../chaos/lib/report.js';
import { runChaos } from '../../chaos/lib/run-chaos.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

/**
 * SIGTERM to a replica mid-run: it finishes what it is doing and exits 0 without logging errors
 * (checked by the fault), a fresh replica takes its slot, and no task is lost or finished wrongly.
 */
let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describe('chaos: SIGTERM', () => {
  it('the replica exits 0 and no task is lost', async () => {
    const report = await runChaos({ profile: focusedProfile('sigterm', { atMs: 3_000 }), databaseUrl: database.url });
    if (!report.ok) console.log(formatReport(report));
    expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.violations.join('; ')}`)).toEqual([]);
    expect(report.faults.find((f) => f.name === 'sigterm')?.detail).toMatch(/exited 0/);
    expect(report.figures?.byStatus.completed).toBeGreaterThan(0);
  }, 90_000);
});
