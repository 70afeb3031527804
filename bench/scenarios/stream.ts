import { sql } from 'kysely';
import { readFileSync } from 'node:fs';
import type { Db } from '../../src/db/database.js';
import type { ReplicaProcess } from '../../test/helpers/replica-process.js';
import { openEventStream, type OpenStream } from '../../test/helpers/sse.js';
import { withCommitStampedServer } from '../lib/database.js';
import { withReplicas } from '../lib/replicas.js';
import { recordFigure } from '../lib/figures.js';
import { fmtSteal, withSteal } from '../lib/steal.js';
import { fmtMs, fmtRate, summarize, table, type LatencySummary } from '../lib/stats.js';
import { createPaced, registerAgents, waitUntil } from '../lib/workload.js';
import { PROFILE, args, log } from './common.js';

/**
 * The assignment stream (GET /api/v1/agents/:id/assignments): create -> the agent holding the
 * event, over the event stream and over the long poll, idle and at 1,000 creates/s, beside
 * create -> assigned of the same tasks (assigned_at - created_at, the database's stamps) and the
 * assignment's commit (its `assigned` event's commit timestamp: the scenario runs on a scratch
 * PostgreSQL with track_commit_timestamp on). assigned_at is the batch transaction's start; the
 * assignment exists for nobody until the commit, so what the stream itself adds is commit -> agent.
 * Arrival is stamped by this process on the same host, so all are on the database server's clock.
 * Then 2,000 open streams on one replica: its memory per stream, and delivery with all of them open.
 */

const SMOKE = args.profile === 'smoke';
const AGENTS = 10;
const OPEN_STREAMS = SMOKE ? 200 : 2_000;
const REQUESTER = 'bench-stream';

type Via = 'stream' | 'long poll';

interface DeliveryRun {
  via: Via;
  load: string;
  assigned: LatencySummary;
  committed: LatencySummary;
  delivered: LatencySummary;
  /** The assignment's commit -> the agent holding it, per task. */
  added: LatencySummary;
  rate: number;
}

/** Arrival times (epoch ms) of each task's `assigned` event, as the agents receive them. */
class Arrivals {
  readonly at = new Map<string, number>();
  duplicates = 0;
  record(taskId: string): void {
    if (this.at.has(taskId)) this.duplicates += 1;
    else this.at.set(taskId, performance.timeOrigin + performance.now());
  }
}

async function openAgentStreams(replica: ReplicaProcess, agents: readonly string[], arrivals: Arrivals): Promise<OpenStream[]> {
  return await Promise.all(
    agents.map((agent) =>
      openEventStream(`${replica.apiUrl}/api/v1/agents/${agent}/assignments`, { 'x-agent-id': agent }, (event) => {
        if (event.event === 'assigned') arrivals.record((JSON.parse(event.data) as { id: string }).id);
      }),
    ),
  );
}

/** Each agent long-polls in a loop (wait=30, resuming at the cursor) until stopped. */
function longPollers(replica: ReplicaProcess, agents: readonly string[], arrivals: Arrivals): { stop(): Promise<void> } {
  let running = true;
  const controller = new AbortController();
  const loops = agents.map(async (agent) => {
    let cursor: string | undefined;
    while (running) {
      const query = cursor === undefined ? '?wait=30' : `?wait=30&cursor=${cursor}`;
      try {
        const response = await fetch(`${replica.apiUrl}/api/v1/agents/${agent}/assignments${query}`, {
          headers: { 'x-agent-id': agent },
          signal: controller.signal,
        });
        const body = (await response.json()) as { events: { event: string; task: { id: string } }[]; cursor: string };
        for (const e of body.events) if (e.event === 'assigned') arrivals.record(e.task.id);
        cursor = body.cursor;
      } catch {
        if (running) throw new Error(`long poll of ${agent} failed`);
      }
    }
  });
  return {
    async stop() {
      running = false;
      controller.abort();
      await Promise.allSettled(loops);
    },
  };
}

/** Per task of the requester: create -> assigned, -> the assignment's commit, -> arrival at the agent. */
async function measure(db: Db, arrivals: Arrivals): Promise<Pick<DeliveryRun, 'assigned' | 'committed' | 'delivered' | 'added'>> {
  const { rows } = await sql<{ id: string; created: number; assigned: number; committed: number }>`
    SELECT t.id, extract(epoch FROM t.created_at) * 1000 AS created, extract(epoch FROM t.assigned_at) * 1000 AS assigned,
           extract(epoch FROM pg_xact_commit_timestamp(e.xmin)) * 1000 AS committed
      FROM dispatch_tasks t JOIN dispatch_task_events e ON e.task_id = t.id AND e.event = 'assigned' AND e.attempt = 1
     WHERE t.requester = ${REQUESTER}`.execute(db);
  const arrived = rows.filter((r) => arrivals.at.has(r.id));
  return {
    assigned: summarize(rows.map((r) => Number(r.assigned) - Number(r.created))),
    committed: summarize(rows.map((r) => Number(r.committed) - Number(r.created))),
    delivered: summarize(arrived.map((r) => arrivals.at.get(r.id)! - Number(r.created))),
    added: summarize(arrived.map((r) => arrivals.at.get(r.id)! - Number(r.committed))),
  };
}

async function deliveryRun(db: Db, replica: ReplicaProcess, agents: readonly string[], via: Via, load: 'idle' | 'rate'): Promise<DeliveryRun> {
  await sql`DELETE FROM dispatch_tasks`.execute(db);
  const arrivals = new Arrivals();
  const streams = via === 'stream' ? await openAgentStreams(replica, agents, arrivals) : [];
  const pollers = via === 'long poll' ? longPollers(replica, agents, arrivals) : null;
  try {
    const rest = { via: 'rest', urls: [replica.apiUrl] } as const;
    const count = load === 'idle' ? PROFILE.idleTasks : PROFILE.rate * PROFILE.rateSeconds;
    const paced =
      load === 'idle'
        ? await createPaced(rest, { rate: 1_000 / PROFILE.idleGapMs, count, maxInFlight: 1, requester: REQUESTER })
        : await createPaced(rest, { rate: PROFILE.rate, count, maxInFlight: 128, requester: REQUESTER });
    await waitUntil(`${count} tasks delivered`, async () => arrivals.at.size >= count, 60_000, 20);
    if (arrivals.duplicates > 0) throw new Error(`${arrivals.duplicates} tasks delivered twice`);
    const figures = await measure(db, arrivals);
    return { via, load: load === 'idle' ? `idle, 1 task / ${PROFILE.idleGapMs} ms` : `${fmtRate((paced.created * 1_000) / paced.elapsedMs)} creates`, ...figures, rate: paced.created };
  } finally {
    for (const s of streams) s.close();
    await pollers?.stop();
  }
}

/** The replica's resident set (kB) from /proc, and its V8 heap in use from its metrics. */
async function memory(replica: ReplicaProcess): Promise<{ rssKb: number; heapKb: number }> {
  const status = readFileSync(`/proc/${replica.pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  const metrics = await (await fetch(`${replica.opsUrl}/metrics`)).text();
  const heap = /^dispatch_process_nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics)?.[1];
  return { rssKb, heapKb: heap === undefined ? Number.NaN : Number(heap) / 1024 };
}

export async function stream(report: string[]): Promise<void> {
  await withCommitStampedServer('stream', async (serverUrl, database) => {
    const db = database.db;
    await withReplicas(serverUrl, { count: 1, config: { server: { rate_limit_per_minute: 10_000_000 } } }, async (replicas) => {
      const replica = replicas[0]!;
      const swarm = await registerAgents([replica.apiUrl], AGENTS, 100_000);
      try {
        // Warm-up (connections, plans, JIT); not measured.
        await deliveryRun(db, replica, swarm.names, 'stream', 'idle');
        const runs: DeliveryRun[] = [];
        for (const via of ['stream', 'long poll'] as const) {
          for (const load of ['idle', 'rate'] as const) {
            log(`stream: ${via}, ${load}`);
            const { result: run, steal } = await withSteal(() => deliveryRun(db, replica, swarm.names, via, load));
            log(
              `  create->assigned p50 ${fmtMs(run.assigned.p50)} p99 ${fmtMs(run.assigned.p99)}; create->committed p50 ${fmtMs(run.committed.p50)}; ` +
                `create->agent p50 ${fmtMs(run.delivered.p50)} p99 ${fmtMs(run.delivered.p99)}; commit->agent p50 ${fmtMs(run.added.p50)} p99 ${fmtMs(run.added.p99)} (n=${run.delivered.n}; ${fmtSteal(steal)})`,
            );
            runs.push(run);
            if (via === 'stream' && load === 'idle') recordFigure('streamAddedP50', run.added.p50, steal);
          }
        }
        report.push(
          '### Create -> the agent holding the assignment (1 replica, 10 agents)',
          table(
            ['delivery', 'load', 'tasks', 'create->assigned (assigned_at) p50 / p99', 'create->commit p50 / p99', 'create->agent p50 / p99', 'commit->agent p50 / p99'],
            runs.map((r) => [
              r.via,
              r.load,
              String(r.delivered.n),
              `${fmtMs(r.assigned.p50)} / ${fmtMs(r.assigned.p99)}`,
              `${fmtMs(r.committed.p50)} / ${fmtMs(r.committed.p99)}`,
              `${fmtMs(r.delivered.p50)} / ${fmtMs(r.delivered.p99)}`,
              `${fmtMs(r.added.p50)} / ${fmtMs(r.added.p99)}`,
            ]),
          ),
        );

        // Many open streams on one replica: memory per stream, and delivery with all of them open.
        const before = await memory(replica);
        log(`stream: opening ${OPEN_STREAMS} idle streams`);
        const idle = await openAgentStreams(
          replica,
          Array.from({ length: OPEN_STREAMS }, (_, i) => `idle-agent-${i}`),
          new Arrivals(),
        );
        try {
          if (idle.some((s) => s.status !== 200)) throw new Error('an idle stream was refused');
          await new Promise((r) => setTimeout(r, 2_000));
          const after = await memory(replica);
          const perStream = { rss: (after.rssKb - before.rssKb) / OPEN_STREAMS, heap: (after.heapKb - before.heapKb) / OPEN_STREAMS };
          log(`  RSS ${before.rssKb} -> ${after.rssKb} kB, heap ${before.heapKb.toFixed(0)} -> ${after.heapKb.toFixed(0)} kB`);
          const loaded = await deliveryRun(db, replica, swarm.names, 'stream', 'idle');
          log(`  with ${OPEN_STREAMS} open: create->agent p50 ${fmtMs(loaded.delivered.p50)} p99 ${fmtMs(loaded.delivered.p99)}`);
          report.push(
            `### ${OPEN_STREAMS} open assignment streams on one replica`,
            table(
              ['RSS per stream', 'heap per stream', 'create->assigned p50 / p99', 'create->agent p50 / p99 (all open)'],
              [
                [
                  `${perStream.rss.toFixed(1)} KB`,
                  `${perStream.heap.toFixed(1)} KB`,
                  `${fmtMs(loaded.assigned.p50)} / ${fmtMs(loaded.assigned.p99)}`,
                  `${fmtMs(loaded.delivered.p50)} / ${fmtMs(loaded.delivered.p99)}`,
                ],
              ],
            ),
          );
        } finally {
          for (const s of idle) s.close();
        }
      } finally {
        await swarm.stop();
      }
    });
  });
}
