import { describe, expect, it } from 'vitest';
import { focusedProfile } from '../../chaos/lib/profile.js';
import { runChaosChecked } from '../helpers/chaos.js';

/**
 * PostgreSQL restarts mid-run (the swarm's own embedded server, stopped and started again on the
 * same port and data). Replicas answer 503 while it is down (agents retry), none of them dies,
 * and every task still ends as its agents decided, with every event in JetStream once.
 */
describe('chaos: PostgreSQL restart', () => {
  it('replicas answer 503 meanwhile, recover, and finish every task correctly', async () => {
    const report = await runChaosChecked(focusedProfile('postgres', { atMs: 3_000, downMs: 2_500 }));
    const fault = report.faults.find((f) => f.name === 'postgres');
    expect(fault?.detail).toMatch(/every replica ready/);
    // Agents kept calling during the outage and were told to come back later, not given 500s.
    expect(report.traffic.unavailable503).toBeGreaterThan(0);
    expect(report.timings.drainAfterLastFaultMs).not.toBeNull();
  }, 90_000);
});
