import { ERROR_LOG_LINE } from '../../test/helpers/replica-process.js';
import type { FaultName, FaultSpec } from './profile.js';
import type { Swarm } from './swarm.js';

/** What happened when a fault was injected, and how the swarm came back. */
export interface FaultRecord {
  name: FaultName;
  /** ms since the run's start (the feed's first task). */
  startedAt: number;
  /** The fault was lifted (replica restarted, server up, Warren answering). */
  endedAt: number;
  detail: string;
  /** The same two instants as wall-clock epoch ms (to compare with database timestamps). */
  wallStart: number;
  wallEnd: number;
  /** Broken expectations of the fault itself (e.g. SIGTERM did not exit 0). */
  violations: string[];
  /** Warren fault: when every agent was first seen unknown in the database (epoch ms), if it was. */
  allUnknownAt?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once every replica answers /ready 200 (PostgreSQL reachable and migrated), or throws. */
export async function waitReplicasReady(swarm: Swarm, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const replicas = swarm.slots.filter((r) => r !== null && !r.hasExited());
    const answers = await Promise.all(
      replicas.map(async (r) => {
        try {
          const response = await fetch(`${r!.opsUrl}/ready`, { signal: AbortSignal.timeout(2_000) });
          await response.body?.cancel();
          return response.ok;
        } catch {
          return false;
        }
      }),
    );
    if (answers.every(Boolean)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`replicas not ready ${timeoutMs} ms after the fault`);
    await sleep(100);
  }
}

/**
 * While PostgreSQL is down every live replica must answer API calls 503 with Retry-After, at
 * once: not refuse the connection, not hang, not 500. Returns what each did otherwise.
 */
export async function probeUnavailable(swarm: Pick<Swarm, 'slots'>, timeoutMs = 5_000): Promise<string[]> {
  const replicas = swarm.slots.filter((r) => r !== null && !r.hasExited());
  const findings = await Promise.all(
    replicas.map(async (r) => {
      try {
        const response = await fetch(`${r!.apiUrl}/api/v1/tasks?limit=1`, {
          headers: { 'x-agent-id': 'chaos-probe' },
          signal: AbortSignal.timeout(timeoutMs),
        });
        await response.body?.cancel();
        if (response.status !== 503) return `${r!.name} answered ${response.status} while PostgreSQL was down (expected 503)`;
        if (!response.headers.get('retry-after')) return `${r!.name} answered 503 without Retry-After while PostgreSQL was down`;
        return null;
      } catch (error) {
        return `${r!.name} gave no answer while PostgreSQL was down: ${(error as Error).message}`;
      }
    }),
  );
  return findings.filter((f): f is string => f !== null);
}

async function agentsNotUnknown(swarm: Swarm): Promise<number> {
  const row = await swarm.database.db
    .selectFrom('dispatch_agents')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('source', '=', 'warren')
    .where('status', '<>', 'unknown')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** A live slot to hit; `preferred` when it is up. */
function pickSlot(swarm: Swarm, preferred: number): number {
  if (swarm.slots[preferred]) return preferred;
  const slot = swarm.slots.findIndex((r) => r !== null);
  if (slot < 0) throw new Error('no replica is up');
  return slot;
}

/** Injects one fault, holds it for downMs, lifts it, and reports. */
export async function injectFault(swarm: Swarm, spec: FaultSpec, t0: number): Promise<FaultRecord> {
  const wallStart = Date.now();
  const record: FaultRecord = { name: spec.name, startedAt: wallStart - t0, endedAt: 0, wallStart, wallEnd: 0, detail: '', violations: [] };
  const log = swarm.options.log;
  log(`fault ${spec.name}: start`);
  try {
    switch (spec.name) {
      case 'sigkill': {
        const slot = pickSlot(swarm, 0);
        const { exit } = await swarm.stopReplica(slot, 'SIGKILL');
        if (exit.signal !== 'SIGKILL') record.violations.push(`SIGKILLed replica exited ${JSON.stringify(exit)}`);
        await sleep(spec.downMs);
        const replica = await swarm.startReplica(slot);
        record.detail = `slot ${slot + 1} killed, ${replica.name} started after ${spec.downMs} ms`;
        break;
      }
      case 'sigterm': {
        const slot = pickSlot(swarm, swarm.slots.length > 1 ? 1 : 0);
        const { exit, output, ms } = await swarm.stopReplica(slot, 'SIGTERM');
        if (exit.code !== 0 || exit.signal !== null) {
          record.violations.push(`SIGTERMed replica exited ${JSON.stringify(exit)} (expected code 0); output: ${output.slice(-1_500)}`);
        }
        if (ERROR_LOG_LINE.test(output)) record.violations.push(`SIGTERMed replica logged errors: ${output.slice(-1_500)}`);
        await sleep(spec.downMs);
        const replica = await swarm.startReplica(slot);
        record.detail = `slot ${slot + 1} exited ${exit.code} after ${ms} ms, ${replica.name} started`;
        break;
      }
      case 'nats': {
        await swarm.nats.stop();
        await sleep(spec.downMs);
        await swarm.nats.start();
        record.detail = `nats-server down ${spec.downMs} ms`;
        break;
      }
      case 'postgres': {
        if (!swarm.postgres) throw new Error('the postgres fault needs the swarm to own its PostgreSQL');
        const down = Date.now();
        await swarm.postgres.down();
        record.violations.push(...(await probeUnavailable(swarm)));
        await sleep(Math.max(0, spec.downMs - (Date.now() - down)));
        await swarm.postgres.up();
        const outage = Date.now() - down;
        const readyMs = await waitReplicasReady(swarm, 60_000);
        record.detail = `PostgreSQL down ${outage} ms; every replica ready ${readyMs} ms after it was back`;
        break;
      }
      case 'warren': {
        swarm.warren.failWith('error');
        const until = Date.now() + spec.downMs;
        // Watched, not assumed from the grace window: a loaded machine syncs late, and only the
        // moment the replicas actually wrote "unknown" says from when nothing may be assigned.
        while (Date.now() < until && record.allUnknownAt === undefined) {
          if ((await agentsNotUnknown(swarm)) === 0) record.allUnknownAt = Date.now();
          else await sleep(50);
        }
        await sleep(Math.max(0, until - Date.now()));
        swarm.warren.recover();
        record.detail = `Warren answered 500 for ${spec.downMs} ms; every agent unknown ${
          record.allUnknownAt === undefined ? 'never' : `after ${record.allUnknownAt - wallStart} ms`
        }`;
        break;
      }
    }
  } catch (error) {
    record.violations.push(`fault ${spec.name} could not be applied or lifted: ${(error as Error).message}`);
  }
  record.wallEnd = Date.now();
  record.endedAt = record.wallEnd - t0;
  log(`fault ${spec.name}: ${record.detail || 'failed'} (${record.violations.length} violations)`);
  return record;
}

/** Runs the schedule in order: each fault starts at its time, or when the previous one ended. */
export async function runFaults(swarm: Swarm, schedule: FaultSpec[], t0: number, stopped: () => boolean): Promise<FaultRecord[]> {
  const records: FaultRecord[] = [];
  for (const spec of [...schedule].sort((a, b) => a.atMs - b.atMs)) {
    while (!stopped() && Date.now() - t0 < spec.atMs) await sleep(Math.min(100, spec.atMs - (Date.now() - t0)));
    if (stopped()) break;
    records.push(await injectFault(swarm, spec, t0));
  }
  return records;
}
