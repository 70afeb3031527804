import { sql } from 'kysely';
import { ChaosAgents } from './agents.js';
import { checkAudit, checkOutcomes, checkReassignments, checkStream, type CheckResult, type OutcomeFigures } from './checks.js';
import { queueState, readEvents, readEventStream, readTasks } from './collect.js';
import { runFaults, type FaultRecord } from './faults.js';
import { CHAOS_REQUESTER, feedTasks } from './feed.js';
import { agentSpecs, type ChaosProfile } from './profile.js';
import { Swarm } from './swarm.js';
import { auditAssignments } from '../../test/helpers/assignment-audit.js';
import type { DispatchConfigInput } from '../../src/config/config.js';

export interface ChaosRunOptions {
  profile: ChaosProfile;
  /** Use this database instead of starting PostgreSQL (the postgres fault then cannot run). */
  databaseUrl?: string;
  replicaConfig?: DispatchConfigInput;
  log?: (line: string) => void;
}

export interface ChaosReport {
  profile: ChaosProfile;
  ok: boolean;
  checks: CheckResult[];
  faults: FaultRecord[];
  figures: OutcomeFigures | null;
  timings: {
    setupMs: number;
    feedMs: number;
    /** From the first task created to a drained queue (every task terminal, every event published). */
    runMs: number;
    /** From the end of the last fault to a drained queue. */
    drainAfterLastFaultMs: number | null;
    /** From the last task created to a drained queue. */
    drainAfterFeedMs: number | null;
    checksMs: number;
    totalMs: number;
  };
  traffic: { requests: number; unavailable503: number; networkErrors: number; polls: number; attempts: number; agentStops: number; creationReplays: number };
  /** Where the run stood when it gave up (set when the deadline passed). */
  error: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One chaos run: start the swarm, create tasks at an even pace while agents work them and the
 * faults go off on schedule, wait until the queue is drained, then check everything against the
 * logbook, the events table and the stream. Everything is bounded by profile.deadlineMs, and the
 * swarm is torn down whatever happens.
 */
export async function runChaos(options: ChaosRunOptions): Promise<ChaosReport> {
  const { profile } = options;
  const log = options.log ?? (() => undefined);
  const begun = Date.now();
  const deadline = begun + profile.deadlineMs;
  const specs = agentSpecs(profile);
  const checks: CheckResult[] = [];
  let faults: FaultRecord[] = [];
  let figures: OutcomeFigures | null = null;
  let error: string | null = null;
  const timings: ChaosReport['timings'] = { setupMs: 0, feedMs: 0, runMs: 0, drainAfterLastFaultMs: null, drainAfterFeedMs: null, checksMs: 0, totalMs: 0 };
  const traffic: ChaosReport['traffic'] = { requests: 0, unavailable503: 0, networkErrors: 0, polls: 0, attempts: 0, agentStops: 0, creationReplays: 0 };

  if (!Number.isInteger(profile.tasks) || profile.tasks < 1 || !Number.isInteger(profile.agents) || profile.agents < 1) {
    // Every check would pass vacuously: refuse rather than report a clean run.
    throw new Error(`a chaos run needs at least one task and one agent (got ${profile.tasks} tasks, ${profile.agents} agents)`);
  }
  log(`profile ${profile.name}: ${profile.replicas} replicas, ${profile.agents} agents, ${profile.tasks} tasks, seed ${profile.seed}`);
  const swarm = await Swarm.start({
    replicas: profile.replicas,
    agents: specs,
    maxConcurrent: profile.maxConcurrent,
    databaseUrl: options.databaseUrl,
    autovacuum: profile.autovacuum,
    replicaConfig: options.replicaConfig,
    log,
  });
  const agents = new ChaosAgents({ profile, specs, urls: () => swarm.urls(), warren: swarm.warren, deadline });
  try {
    timings.setupMs = Date.now() - begun;
    const { rows: vacuum } = await sql<{ autovacuum: string }>`SHOW autovacuum`.execute(swarm.database.db);
    log(`swarm up in ${timings.setupMs} ms; PostgreSQL autovacuum ${vacuum[0]?.autovacuum}`);
    // Agents are known once every replica's first directory sync has run.
    await waitUntil(async () => (await countReadyAgents(swarm)) >= specs.length, deadline, 'the agent directory to be synced');
    agents.start();
    const t0 = Date.now();
    let stopFaults = false;
    const faulting = runFaults(swarm, profile.faults, t0, () => stopFaults || Date.now() > deadline);
    let lastReport = 0;
    const feed = await feedTasks(profile, () => swarm.urls(), {
      deadline,
      onCreated: (n) => {
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          log(`${n}/${profile.tasks} tasks created, ${Math.round((Date.now() - t0) / 1000)} s`);
        }
      },
    });
    timings.feedMs = feed.durationMs;
    traffic.creationReplays = feed.replays;
    checks.push({
      name: 'every task created',
      ok: feed.failures.length === 0,
      summary: `${feed.ids.filter(Boolean).length}/${profile.tasks} created in ${feed.durationMs} ms (${feed.replays} idempotent replays)`,
      count: feed.failures.length,
      violations: feed.failures,
    });
    log(`feed done in ${feed.durationMs} ms; waiting for the faults`);
    faults = await faulting;
    const lastFaultEnd = faults.length > 0 ? t0 + Math.max(...faults.map((f) => f.endedAt)) : t0;

    // Drained: every task terminal and every event acknowledged by JetStream.
    let drainedAt: number | null = null;
    let lastState = { total: 0, open: 0, owed: 0 };
    let lastLog = 0;
    while (Date.now() < deadline) {
      try {
        lastState = await queueState(swarm.database.db, CHAOS_REQUESTER);
        if (lastState.open === 0 && lastState.owed === 0 && lastState.total >= feed.ids.filter(Boolean).length) {
          drainedAt = Date.now();
          break;
        }
      } catch {
        // The database may be restarting (a fault still running): look again.
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`draining: ${lastState.open} open tasks, ${lastState.owed} events owed`);
      }
      await sleep(100);
    }
    stopFaults = true;
    if (drainedAt === null) error = `deadline passed before the queue drained: ${lastState.open} tasks open, ${lastState.owed} events owed`;
    timings.runMs = (drainedAt ?? Date.now()) - t0;
    timings.drainAfterLastFaultMs = drainedAt === null ? null : Math.max(0, drainedAt - lastFaultEnd);
    timings.drainAfterFeedMs = drainedAt === null ? null : Math.max(0, drainedAt - (t0 + feed.durationMs));
    log(drainedAt ? `drained ${timings.drainAfterLastFaultMs} ms after the last fault` : error!);
    await agents.stop();

    const checksStarted = Date.now();
    const db = swarm.database.db;
    const [tasks, events] = await Promise.all([readTasks(db), readEvents(db)]);
    const outcome = checkOutcomes(feed.ids, tasks, events, agents.entries());
    figures = outcome.figures;
    checks.push(outcome.check);
    checks.push(checkAudit(await auditAssignments(db, profile.maxConcurrent)));
    checks.push(checkStream(events, await readEventStream(swarm.nats.url)));
    checks.push(checkReassignments(events, agents.stopWindows));
    const faultViolations = faults.flatMap((f) => f.violations.map((v) => `${f.name}: ${v}`));
    const missingFaults = profile.faults.filter((spec) => !faults.some((f) => f.name === spec.name)).map((spec) => `${spec.name}: never injected`);
    checks.push({
      name: 'faults injected, replicas behaved',
      ok: faultViolations.length + missingFaults.length + swarm.unexpectedExits.length === 0,
      summary: `${faults.length}/${profile.faults.length} faults; unexpected replica exits ${swarm.unexpectedExits.length}`,
      count: faultViolations.length + missingFaults.length + swarm.unexpectedExits.length,
      violations: [
        ...faultViolations,
        ...missingFaults,
        ...swarm.unexpectedExits.map((e) => `replica ${e.name} exited by itself ${JSON.stringify(e.exit)}: ${e.output.slice(-1_000)}`),
      ],
    });
    const stats = agents.client.stats;
    const creation = feed.stats;
    const serverErrors = stats.serverErrors + creation.serverErrors;
    const http = [
      ...agents.counters.unexpectedAnswers,
      ...(stats.lastServerError ? [`last 5xx to an agent: ${stats.lastServerError}`] : []),
      ...(creation.lastServerError ? [`last 5xx on task creation: ${creation.lastServerError}`] : []),
      // What the replicas said about it (their error lines).
      ...(serverErrors > 0 ? swarm.errorLines().slice(-10) : []),
    ];
    checks.push({
      name: 'no 500s, no unexpected answers',
      ok: serverErrors === 0 && agents.counters.unexpectedAnswers.length === 0 && agents.counters.foreignTasks === 0,
      summary:
        `${stats.requests} agent requests; 503 ${stats.unavailable}, network errors ${stats.networkErrors}, 5xx ${stats.serverErrors}; ` +
        `${creation.requests} creation requests; 503 ${creation.unavailable}, network errors ${creation.networkErrors}, 5xx ${creation.serverErrors}`,
      count: serverErrors + agents.counters.unexpectedAnswers.length + agents.counters.foreignTasks,
      violations: http,
    });
    if (error) checks.push({ name: 'drained before the deadline', ok: false, summary: error, count: 1, violations: [error] });
    Object.assign(traffic, {
      requests: stats.requests,
      unavailable503: stats.unavailable,
      networkErrors: stats.networkErrors,
      polls: agents.counters.polls,
      attempts: agents.counters.attempts,
      agentStops: agents.counters.stops,
    });
    timings.checksMs = Date.now() - checksStarted;
  } catch (failure) {
    error = `chaos run failed: ${(failure as Error).stack ?? String(failure)}`;
    checks.push({ name: 'run completed', ok: false, summary: error.split('\n')[0]!, count: 1, violations: [error] });
  } finally {
    await agents.stop().catch(() => undefined);
    await swarm.dispose();
  }
  timings.totalMs = Date.now() - begun;
  return { profile, ok: checks.every((c) => c.ok), checks, faults, figures, timings, traffic, error };
}

async function countReadyAgents(swarm: Swarm): Promise<number> {
  const row = await swarm.database.db
    .selectFrom('dispatch_agents')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'ready')
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

async function waitUntil(probe: () => Promise<boolean>, deadline: number, what: string): Promise<void> {
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
