import type pg from 'pg';
import { advisoryLockHeldExclusively, advisoryLockWithin, advisoryUnlock, advisoryUnlockIfHeld, tryAdvisoryLock } from '../db/advisory-lock.queries.js';
import { ADVISORY_LOCK } from '../db/contract.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Tracer } from '../observability/tracing.js';
import type { Metrics } from '../observability/metrics.js';
import { scopeBudget } from '../scopes/scope-limits.js';
import { piggybackedTransaction } from '../db/piggybacked-transaction.js';
import {
  applyAssignmentsStatement,
  enqueueAssignmentRun,
  lockAgentsAndClaimStatement,
  markUnmatched,
  readLockedAgentsAndClaim,
  readCapableScopes,
  type AgentShare,
  type Assignment,
} from './assignment.queries.js';
import { claimUnderScopeControls, settleScopeStarts, type ControlledScope } from './scope-claim.js';
import { effectivePriority } from './aging.js';
import { rowsHeldBeside, sideBySide } from './side-by-side.js';
import type { PlacementRecordJson } from './placement.schemas.js';
import { decidePlacement, type AgentSnapshot, type PlacementDecision } from './scoring.js';

export interface AssignerOptions {
  batchSize: number;
  /** assignment.parallel_batches: batches side by side on a backlog (default 1, one at a time). */
  parallelBatches?: number;
  defaultMaxConcurrent: number;
  /** assignment.aging_ms, to record the effective priority a task was claimed with (default 60000). */
  agingMs?: number;
  /** assignment.recorded_candidates: how many candidates each recorded decision lists (default 3). */
  recordedCandidates?: number;
  /** Called after the commit of a batch that assigned tasks (their events are in the outbox). */
  onAssigned?: () => void;
  /** Called after commit with the sleeping agents that just won tasks (they must be woken). */
  onSleepingWinners?: (agents: string[]) => void;
  /** Assign spans for traced tasks, after commit. */
  tracer?: Tracer;
}

/**
 * The steps of one batch, in order, as dispatch_assignment_batch_step_seconds labels them:
 * `agents` is BEGIN and the first statement, which locks the agents and claims outside the
 * controlled scopes (one round trip); `claim` what the controlled scopes add (nothing without
 * them); `write` the write and, unless scope limits are settled after it, the COMMIT; `commit` is
 * whatever follows.
 */
type BatchStep = 'agents' | 'claim' | 'place' | 'write' | 'commit';

/**
 * Times a batch's steps on the replica's clock, each from the end of the one before. PostgreSQL's
 * statement times leave out the round trips and the waits for the replica's event loop between
 * them; these include them (docs/BENCHMARKS.md, session 19: at half the round trip's rate a
 * claim took 0.2 ms in PostgreSQL and 3.6 ms here).
 */
function stepClock(started: number): { lap(step: BatchStep): void; laps: [BatchStep, number][] } {
  const laps: [BatchStep, number][] = [];
  let last = started;
  return {
    laps,
    lap(step) {
      const now = performance.now();
      laps.push([step, now - last]);
      last = now;
    },
  };
}

/**
 * The connections the assigner works on: `api`, the pool behind `db`, for batches run outside a
 * drain (a test's, the side-by-side batches); `direct`, for the drain's session, whose advisory
 * locks must not go through a transaction-mode pooler (src/db/connections.ts).
 */
export interface AssignerPools {
  api: pg.Pool;
  direct: pg.Pool;
}

export interface BatchResult {
  claimed: number;
  assigned: number;
}

/**
 * The decision of every assignment is stored with its event, and its size is most of what a
 * drain writes per task: PostgreSQL parses each listed candidate's numbers into jsonb (measured,
 * 500 tasks a batch: 10 candidates a task 130 ms a batch, 3 candidates 110 ms). The winner and
 * its two runners-up answer "why this agent?"; `outcomes` counts the rest.
 */
const DEFAULT_RECORDED_CANDIDATES = 3;
/** The database's own default for dispatch.aging_ms (dispatch_task_rank). */
const DEFAULT_AGING_MS = 60_000;
const LOCK_WAIT_MS = 1_000;

/**
 * The placement record kept on the task: enough to answer "why this agent?" later. A task of a
 * controlled scope also records the scope's limits and usage as the batch read them under the
 * scope's row lock, before this task.
 */
export function placementRecord(decision: PlacementDecision, now: Date, effective_priority: number, scope?: ControlledScope): PlacementRecordJson {
  return {
    decided_at: now.toISOString(),
    effective_priority,
    winner: decision.winner?.name ?? null,
    score: decision.score,
    considered: decision.considered,
    candidates: decision.candidates,
    outcomes: decision.outcomes,
    without_capability: decision.withoutCapability,
    ...(scope && {
      scope_limits: {
        max_running: scope.state.maxRunning,
        running_before: scope.state.running + scopeBudget(scope.state) - scope.remaining,
        max_starts_per_minute: scope.state.maxStartsPerMinute,
        starts_before: scope.state.maxStartsPerMinute === null ? null : scope.state.starts + scopeBudget(scope.state) - scope.remaining,
      },
    }),
  };
}

function indexByCapability(agents: AgentSnapshot[]): Map<string, AgentSnapshot[]> {
  const byScope = new Map<string, AgentSnapshot[]>();
  for (const agent of agents) {
    for (const capability of agent.capabilities) {
      const list = byScope.get(capability);
      if (list) list.push(agent);
      else byScope.set(capability, [agent]);
    }
  }
  return byScope;
}

/**
 * Places pending tasks on agents. One batch is one transaction: lock the free agents, claim
 * tasks they can serve, score in memory (keeping each agent's count as it fills up), write.
 */
export class Assigner {
  constructor(
    private readonly db: Db,
    private readonly pools: AssignerPools,
    private readonly options: AssignerOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** One batch. Exposed so tests and the benchmark can drive placement step by step. */
  async assignBatch(): Promise<BatchResult> {
    const { claimed, assigned } = await this.onApiConnection((conn) => this.batchOn(conn));
    return { claimed, assigned };
  }

  /** Runs `fn` on a connection of the API pool; one that failed is discarded, not reused. */
  private async onApiConnection<T>(fn: (conn: pg.ClientBase) => Promise<T>): Promise<T> {
    const conn = await this.pools.api.connect();
    try {
      const result = await fn(conn);
      conn.release();
      return result;
    } catch (error) {
      conn.release(error instanceof Error ? error : true);
      throw error;
    }
  }

  /**
   * One batch on `conn`, one transaction whose BEGIN travels with its first statement and whose
   * COMMIT with its write (piggybackedTransaction). With `takeActive`, only if its first
   * statement takes ACTIVE (`active` false: another assigner is active, or a writer is probing
   * ACTIVE this instant). With `share`, one of the batches side by side (drainSideBySide): its
   * share of the free agents, and the head of the queue the others may hold walked past.
   */
  private async batchOn(
    conn: pg.ClientBase,
    { takeActive = false, share }: { takeActive?: boolean; share?: AgentShare } = {},
  ): Promise<BatchResult & { active: boolean }> {
    const started = performance.now();
    const clock = stepClock(started);
    const sleepingWinners = new Set<string>();
    const heldAhead = rowsHeldBeside(share, this.options.batchSize);
    const first = lockAgentsAndClaimStatement(this.options.defaultMaxConcurrent, this.options.batchSize, { takeActive, heldAhead, ...(share && { share }) }).compile(this.db);
    const result = await piggybackedTransaction(conn, first, async ({ firstRows, tx, commitWith }) => {
      const { free, others, active, claim } = readLockedAgentsAndClaim(firstRows);
      if (!active) return { claimed: 0, assigned: 0, applied: [], active };
      clock.lap('agents');
      // No agent free (or no task pending: the first statement then locks none): nothing was claimed.
      if (free.length === 0) return { claimed: 0, assigned: 0, applied: [], active };
      // Scope pause and limits (migration 0011): see claimUnderScopeControls for why they are exact.
      const { tasks, controlled } = await claimUnderScopeControls(tx, claim, this.options.batchSize);
      clock.lap('claim');
      const now = new Date();
      if (tasks.length === 0) {
        await settleScopeStarts(tx, controlled, new Map(), now);
        return { claimed: 0, assigned: 0, applied: [], active };
      }
      const byScope = indexByCapability([...free, ...others]);
      const total = free.length + others.length;
      const listed = this.options.recordedCandidates ?? DEFAULT_RECORDED_CANDIDATES;
      const decisions: Assignment[] = [];
      for (const task of tasks) {
        const scope = controlled.get(task.scope);
        // The scope's budget was read under its row lock: spend it, never more.
        if (scope && scope.remaining <= 0) continue;
        const capable = byScope.get(task.scope) ?? [];
        const decision = decidePlacement({ scope: task.scope, priority: task.priority, avoidAgent: task.avoid_agent }, capable, now, listed);
        decision.withoutCapability = total - capable.length;
        const winner = decision.winner;
        if (!winner) continue;
        if (winner.status === 'sleeping') sleepingWinners.add(winner.name);
        const effective = effectivePriority(task.priority, task.ready_at, now, this.options.agingMs ?? DEFAULT_AGING_MS);
        decisions.push({ taskId: task.id, agent: winner.name, placement: placementRecord(decision, now, effective, scope) });
        if (scope) scope.remaining -= 1;
        // The winner's load grows inside the batch, so the next task sees it (and its limit).
        winner.activeTasks += 1;
        winner.lastAssignedAt = now;
      }
      clock.lap('place');
      if (decisions.length === 0) {
        await settleScopeStarts(tx, controlled, new Map(), now);
        return { claimed: tasks.length, assigned: 0, applied: [], active };
      }
      const write = applyAssignmentsStatement(decisions).compile(this.db);
      // The write ends the batch, and carries its COMMIT, unless scope limits are to be settled after it.
      const applied = controlled.size === 0 ? await commitWith(write) : (await tx.executeQuery(write)).rows;
      if (controlled.size > 0) {
        const started = new Map<string, number>();
        for (const a of applied) started.set(a.scope, (started.get(a.scope) ?? 0) + 1);
        await settleScopeStarts(tx, controlled, started, now);
      }
      clock.lap('write');
      return { claimed: tasks.length, assigned: applied.length, applied, active };
    });
    if (result.active) clock.lap('commit');
    this.options.tracer?.assigned(result.applied);
    if (result.active) {
      this.metrics.assignmentBatches.observe((performance.now() - started) / 1000);
      for (const [step, ms] of clock.laps) this.metrics.assignmentBatchSteps.observe({ step }, ms / 1000);
    }
    if (result.assigned > 0) {
      this.metrics.taskTransitions.inc({ event: 'assigned' }, result.assigned);
      this.options.onAssigned?.();
    }
    if (sleepingWinners.size > 0) this.options.onSleepingWinners?.([...sleepingWinners]);
    return { claimed: result.claimed, assigned: result.assigned, active: result.active };
  }

  /**
   * Records `unmatched` for waiting tasks nobody could take; returns how many were marked. New
   * tasks are marked by their INSERT; this catches the rest (an agent that went away or was
   * drained, a task back from a retry, a row a DBA inserted), on the tick, off the path between
   * a new task and its assignment.
   */
  async recordUnmatched(): Promise<number> {
    const marked = await markUnmatched(this.db, await readCapableScopes(this.db), 1_000);
    if (marked > 0) {
      this.metrics.taskTransitions.inc({ event: 'unmatched' }, marked);
      this.logger.info({ tasks: marked }, 'tasks unmatched: no capable agent');
    }
    return marked;
  }

  private running: Promise<void> | undefined;
  /** drain() calls so far, and how many of them the latest completed look at the queue began after. */
  private requests = 0;
  private covered = 0;

  /**
   * One drain at a time in this process: a drain holds a connection while it runs (its session
   * locks and its batches), and drains side by side would take the pool's connections from
   * everything else the replica does. A call that finds a drain running gets the running
   * drain's promise. Its work committed before the call, so any look at the queue the drain begins
   * afterwards (a batch's snapshot, or finding another assigner active) sees it: the drain makes
   * one more pass only when its last look began before the latest call. A replica hears every new
   * task twice (its own create's wake-up, then the NOTIFY), and the second usually costs nothing.
   */
  drain(shouldStop: () => boolean): Promise<void> {
    this.requests += 1;
    if (this.running) return this.running;
    const run = (async () => {
      try {
        do {
          const asked = this.requests;
          try {
            await this.drainAlone(shouldStop);
          } catch (error) {
            // Callers that came later wait on this drain for a pass: make it, or fail them all.
            if (this.requests === asked) throw error;
            this.logger.warn({ err: error }, 'assignment pass failed; running the pass other callers asked for');
          }
        } while (this.covered < this.requests && !shouldStop());
      } finally {
        this.running = undefined;
      }
    })();
    this.running = run;
    return run;
  }

  /** Runs one batch; once it succeeds, every drain() call made before it began is covered. */
  private async look<T>(fn: () => Promise<T>): Promise<T> {
    const asked = this.requests;
    const result = await fn();
    this.covered = asked;
    return result;
  }

  /** Whether a drain is running in this process. */
  get draining(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when no drain is running in this process (a stopping replica waits for it). */
  async whenIdle(): Promise<void> {
    await this.running?.catch(() => {});
  }

  /**
   * Drains the queue as the one active assigner, then goes idle without losing a wake-up (see
   * migration 0002). Returns at once if another assigner is active: it will see our tasks.
   *
   * The session locks and the batches share one connection: the first batch's first statement
   * tries ACTIVE itself, one round trip fewer between a new task and its assignment.
   */
  private async drainAlone(shouldStop: () => boolean): Promise<void> {
    const conn = await this.pools.direct.connect();
    try {
      for (;;) {
        if (shouldStop()) {
          // Hand the work over rather than start on it while stopping.
          await enqueueAssignmentRun(this.db);
          return;
        }
        const asked = this.requests;
        let first: BatchResult & { active: boolean };
        try {
          first = await this.batchOn(conn, { takeActive: true });
        } catch (error) {
          // ACTIVE is the session's: a batch that took it and then failed (rolled back) holds it still.
          await advisoryUnlockIfHeld(conn, ADVISORY_LOCK.assignerActive);
          throw error;
        }
        let placing: boolean;
        if (first.active) {
          this.covered = asked;
          placing = first.assigned > 0;
        } else if (await this.becomeActive(conn)) {
          placing = true;
        } else {
          // Another assigner is active: it hears the same wake-ups and covers them.
          this.covered = asked;
          return;
        }
        try {
          // Stay active while batches keep placing work, full or not: under a steady stream of
          // new tasks the assigner then never looks idle, so writers send no wake-ups (each a
          // NOTIFY, which serialises commits) and each task waits one batch, not a wake-up.
          while (placing && !shouldStop()) {
            const batch = await this.look(() => this.batchOn(conn));
            placing = batch.assigned > 0;
            if (batch.assigned >= this.options.batchSize) await this.drainSideBySide(conn, shouldStop);
          }
        } finally {
          await advisoryUnlock(conn, ADVISORY_LOCK.assignerActive);
        }
        if (shouldStop()) {
          // Hand the rest to another replica rather than leave it for the next tick.
          await enqueueAssignmentRun(this.db);
          return;
        }
        // Every writer that saw us active holds BARRIER (shared) until it commits: wait them out.
        if (await this.lockWithin(conn, ADVISORY_LOCK.assignerBarrier)) {
          await advisoryUnlock(conn, ADVISORY_LOCK.assignerBarrier);
        }
        const last = await this.look(() => this.batchOn(conn));
        if (last.assigned === 0) return;
      }
    } finally {
      conn.release();
    }
  }

  /**
   * A backlog with room for it (a batch placed a whole batch): assignment.parallel_batches
   * batches side by side, each locking its own share of the free agents (lockAgentsAndClaim),
   * the first on the drain's session, the others on the pool, while every batch places a whole
   * batch (sideBySide: the first that does not ends them all). Full agents are not a backlog of
   * this kind: their batches claim many and place few, and side by side they would only claim
   * more. A batch is one transaction, one backend: one at a time, a drain keeps one of the
   * database's cores busy writing, and side by side they share the writing (docs/BENCHMARKS.md,
   * session 18). A task then goes to the best agent of its batch's share, not of all: on a
   * backlog every free agent is filled anyway, and the others show in its decision as
   * `not_free_at_lock`.
   */
  private async drainSideBySide(session: pg.ClientBase, shouldStop: () => boolean): Promise<void> {
    const of = this.options.parallelBatches ?? 1;
    if (of <= 1) return;
    await sideBySide(of, async (index) => {
      const onLane = (conn: pg.ClientBase) => this.batchOn(conn, { share: { index, of } });
      const batch = await (index === 0 ? onLane(session) : this.onApiConnection(onLane));
      return batch.assigned >= this.options.batchSize && !shouldStop();
    });
  }

  /**
   * Takes ACTIVE. A failed try means either another assigner is active (then we leave) or a
   * writer is probing it at this instant (then we wait the moment it takes).
   */
  private async becomeActive(conn: pg.PoolClient): Promise<boolean> {
    if (await tryAdvisoryLock(conn, ADVISORY_LOCK.assignerActive)) return true;
    if (await advisoryLockHeldExclusively(conn, ADVISORY_LOCK.assignerActive)) return false;
    return await this.lockWithin(conn, ADVISORY_LOCK.assignerActive);
  }

  /**
   * Waits for an advisory lock at most LOCK_WAIT_MS. Writers hold these locks only until they
   * commit, but a client that inserts a task and leaves its transaction open must not stall
   * assignment (or, queued behind us, every other writer): give up, and the tick comes back.
   */
  private async lockWithin(conn: pg.PoolClient, key: number): Promise<boolean> {
    const locked = await advisoryLockWithin(conn, key, LOCK_WAIT_MS);
    if (!locked) this.logger.warn({ lock: key }, 'a long transaction holds the assignment wake-up lock; the next tick will catch up');
    return locked;
  }
}
