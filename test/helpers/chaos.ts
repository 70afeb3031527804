import { expect } from 'vitest';
import type { ChaosProfile } from '../../chaos/lib/profile.js';
import { formatReport } from '../../chaos/lib/report.js';
import { runChaos, type ChaosReport } from '../../chaos/lib/run-chaos.js';

/**
 * One chaos run as a focused test: every check of the suite must pass (the whole report is
 * printed when one does not); the test then asserts what is particular to its fault.
 */
export async function runChaosChecked(profile: ChaosProfile, databaseUrl?: string): Promise<ChaosReport> {
  const report = await runChaos({ profile, ...(databaseUrl ? { databaseUrl } : {}) });
  if (!report.ok) console.log(formatReport(report));
  expect(report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.violations.join('; ')}`)).toEqual([]);
  return report;
}
