import { describe, expect, it } from 'vitest';
import { BackgroundService, type ServiceOptions } from '../../src/background/service.js';
import { captureLogs } from '../helpers/logs.js';
import { waitFor } from '../helpers/wait.js';

/** A service whose passes the test scripts: each pass takes the next planned outcome. */
class Scripted extends BackgroundService<number> {
  passes = 0;
  /** Outcomes of the coming passes; an Error is thrown. Past the end, passes succeed. */
  plan: (number | Error)[] = [];
  /** While set, a pass waits for it before finishing. */
  gate: Promise<void> | null = null;

  constructor(options: ServiceOptions, logger = captureLogs().logger) {
    super('scripted', options, logger);
  }

  async runOnce(): Promise<number> {
    this.passes += 1;
    await this.gate;
    const outcome = this.plan.shift() ?? this.passes;
    if (outcome instanceof Error) throw outcome;
    return outcome;
  }
}

describe('BackgroundService', () => {
  it('runs a pass at start when asked, then one per interval, never two at once', async () => {
    const service = new Scripted({ intervalMs: 5, runAtStart: true });
    let release!: () => void;
    service.gate = new Promise((resolve) => (release = resolve));
    service.start();
    await waitFor(() => service.passes === 1, { what: 'first pass' });
    service.nudge();
    // The pass in flight holds the loop: no second pass starts until it ends.
    await new Promise((resolve) => setImmediate(resolve));
    expect(service.passes).toBe(1);
    service.gate = null;
    release();
    await waitFor(() => service.passes >= 3, { what: 'passes on the interval' });
    await service.stop();
  });

  it('waits one interval before the first pass unless told otherwise, and does nothing with interval 0', async () => {
    const late = new Scripted({ intervalMs: 60_000 });
    late.start();
    const off = new Scripted({ intervalMs: 0, runAtStart: true });
    off.start();
    await new Promise((resolve) => setImmediate(resolve));
    expect(late.passes).toBe(0);
    expect(off.passes).toBe(0);
    // A nudge cuts the wait short.
    late.nudge();
    await waitFor(() => late.passes === 1, { what: 'nudged pass' });
    await Promise.all([late.stop(), off.stop()]);
  });

  it('stop() ends the wait at once and resolves after the pass under way', async () => {
    const service = new Scripted({ intervalMs: 60_000, runAtStart: true });
    service.start();
    await waitFor(() => service.passes === 1, { what: 'first pass' });
    const started = performance.now();
    await service.stop();
    expect(performance.now() - started).toBeLessThan(1_000);

    let release!: () => void;
    service.gate = new Promise((resolve) => (release = resolve));
    service.start();
    await waitFor(() => service.passes === 2, { what: 'pass after restart' });
    let stopped = false;
    const stopping = service.stop().then(() => (stopped = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(service.passes).toBe(2);
  });

  it('logs a failing run of passes once, with its end, and keeps going', async () => {
    const logs = captureLogs();
    const service = new Scripted({ intervalMs: 1, runAtStart: true, dependency: 'database', failureMessage: 'database down' }, logs.logger);
    service.plan = [new Error('one'), new Error('two'), new Error('three')];
    service.start();
    await waitFor(() => service.passes >= 5, { what: 'passes after the failures' });
    await service.stop();
    expect(logs.at('warn').map((line) => [line.msg, line.service])).toEqual([['database down', 'database']]);
    expect(logs.at('debug').filter((line) => line.msg === 'database down')).toHaveLength(2);
    expect(logs.at('info').map((line) => line.msg)).toEqual(['scripted working again']);
  });

  it('cuts the first wait by its phase, so loops of one interval started together run apart', async () => {
    const passes: [string, number][] = [];
    class Stamped extends Scripted {
      override async runOnce(): Promise<number> {
        passes.push([this.label, performance.now()]);
        return await super.runOnce();
      }
      constructor(readonly label: string, options: ServiceOptions) {
        super(options);
      }
    }
    const started = performance.now();
    const early = new Stamped('early', { intervalMs: 1_000, phase: () => 1 });
    const late = new Stamped('late', { intervalMs: 1_000, phase: () => 0 });
    early.start();
    late.start();
    await waitFor(() => early.passes >= 2 && late.passes >= 1, { what: 'passes of both loops' });
    await Promise.all([early.stop(), late.stop()]);
    const at = (label: string, n: number) => passes.filter(([l]) => l === label)[n]![1];
    // Phase 1 halves the first wait only; phase 0 leaves it whole (timers never fire early, and
    // half a second apart they do not fire together).
    expect(at('early', 0) - started).toBeGreaterThanOrEqual(499);
    expect(at('late', 0) - at('early', 0)).toBeGreaterThan(250);
    expect(at('early', 1) - at('early', 0)).toBeGreaterThanOrEqual(999);
  });

  it('asks delayAfter for each wait, with the result of the pass (undefined after a failure)', async () => {
    const seen: (number | undefined)[] = [];
    class Paced extends Scripted {
      protected override delayAfter(result: number | undefined): number {
        seen.push(result);
        return 1;
      }
    }
    const service = new Paced({ intervalMs: 60_000, runAtStart: true });
    service.plan = [7, new Error('fails'), 9];
    service.start();
    await waitFor(() => seen.length >= 3, { what: 'three waits' });
    await service.stop();
    expect(seen.slice(0, 3)).toEqual([7, undefined, 9]);
  });
});
