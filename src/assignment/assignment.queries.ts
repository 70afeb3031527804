import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { AgentStatus } from '../db/columns.js';
import { DEADLINE_NOTICE_WITHIN_MS, JOB } from '../db/contract.js';
import type { DB } from '../db/generated/database.js';
import type { Db } from '../db/database.js';
import type { ScopeControlsRow } from '../scopes/scope.queries.js';
import type { AgentSnapshot } from './scoring.js';

type Tx = Transaction<DB>;

interface AgentRowForPlacement {
  name: string;
  capabilities: string[];
  status: AgentStatus;
  drained: boolean;
  active_tasks: number;
  max_concurrent: number;
  last_assigned_at: Date | null;
  avoid_until: Date | null;
}

function toSnapshot(row: AgentRowForPlacement): AgentSnapshot {
  return {
    name: row.name,
    capabilities: row.capabilities,
    status: row.status,
    drained: row.drained,
    activeTasks: row.active_tasks,
    maxConcurrent: row.max_concurrent,
    lastAssignedAt: row.last_assigned_at,
    avoidUntil: row.avoid_until,
  };
}

/**
 * The agents joined to their releases rows (migration 0022), as `alias` and `alias_r`: an agent's
 * live load needs both, and a join reads them in one pass (a subquery per agent cost 15 times
 * more for 200 agents). A release the statement's snapshot misses only makes an agent look fuller.
 */
const agentsWithReleases = (alias: string) => sql.raw(`dispatch_agents ${alias} LEFT JOIN dispatch_agent_releases ${alias}_r ON ${alias}_r.agent = ${alias}.name`);
const agentLoad = (alias: string) => sql.raw(`dispatch_agent_live_load(${alias}.active_tasks, ${alias}.released_folded, ${alias}_r.released)`);

/** The columns of an AgentRowForPlacement read from agentsWithReleases(alias), the agent's own limit or the default. */
const agentColumns = (alias: string, defaultLimit: number | RawBuilder<unknown>) => {
  const a = sql.raw(alias);
  return sql`${a}.name, ${a}.capabilities, ${a}.status, ${a}.drained, ${agentLoad(alias)} AS active_tasks,
    coalesce(${a}.max_concurrent, ${defaultLimit})::int AS max_concurrent, ${a}.last_assigned_at, ${a}.avoid_until`;
};

/**
 * The batch's first statement, which also makes its claim (the SQL function
 * dispatch_lock_agents_and_claim, migration 0030, planned once per session: sent as a literal
 * statement beside BEGIN, it was planned anew for every batch before migration 0026). Locks every
 * agent that could take a task right now, in name order (a fixed order, so two transactions can
 * never deadlock on them). While they are locked no other transaction can raise their load
 * (taking work writes the agent's row; giving it up writes dispatch_agent_releases, which a
 * finishing task never waits on), so the limits checked in memory hold at commit. An agent
 * another batch changed while this one waited for its lock is judged free or not as that batch
 * left it.
 *
 * It also reads the other agents, unlocked, only to explain the batch's decisions: they are read
 * with the statement's snapshot, taken before any lock wait, so an agent that looked free but was
 * filled by a batch that held its lock (and so was not locked here) is among them, looking free.
 * Placing on it would overfill it (test/integration/assignment.race.test.ts): it is marked
 * `unlocked`, and an unlocked agent never wins.
 *
 * Before its scan it takes the scope-controls gate (src/scopes/scope.queries.ts, step 1) for the
 * rest of the transaction. With `takeActive` it first tries the assigner's ACTIVE session lock
 * (migration 0002) for the drain starting on this connection, and reads and locks nothing when
 * another session holds it (`active` false). With no task pending it locks and reads no agent
 * (`free` and `others` empty, migration 0028): the batches a drain makes to confirm the queue is
 * empty before going idle, at low rates two of every three, cost an index probe instead of every
 * agent's row.
 *
 * Then, with some agent locked, the claim (claimPendingTasks' statement with lock_controls: up to
 * `claimLimit` tasks the locked agents can serve, outside the controlled scopes, whose rows it
 * locks and lists in `claim.controls`), in a snapshot taken after the gate and the agents' locks,
 * as when it was a statement of its own; `heldAhead` as for claimStatement. One round trip fewer
 * a batch: at half the round trip benchmark's rate the claim's own round trip took 2.0 to 2.7 ms
 * on the replica's clock for 0.2 ms in PostgreSQL.
 *
 * With `share` it locks only every `of`-th free agent in name order, from the `index`-th: the
 * batches an assigner runs side by side on a backlog (Assigner.drainSideBySide) each take their
 * own share, numbered on the statement's snapshot. Shares numbered on snapshots a moment apart
 * may overlap (an agent filled or freed in between shifts the numbering): the second batch then
 * waits for the first's commit and reads the agent as it left it, so a share is a way to spread
 * the work, never what keeps a limit.
 *
 * The agents and the tasks come as JSON arrays, not a row each: for the 200 agents of the round
 * trip benchmark, the driver's parsing of a row per agent cost the replica 0.4 to 0.7 ms more CPU
 * a batch than JSON.parse, and PostgreSQL 0.15 to 0.25 ms less.
 */
export async function lockAgentsAndClaim(
  tx: Tx,
  defaultLimit: number,
  claimLimit: number,
  options: { takeActive?: boolean; share?: AgentShare; heldAhead?: number } = {},
): Promise<LockedAgentsAndClaim> {
  return readLockedAgentsAndClaim((await lockAgentsAndClaimStatement(defaultLimit, claimLimit, options).execute(tx)).rows);
}

export interface LockedAgentsAndClaim {
  free: AgentSnapshot[];
  others: AgentSnapshot[];
  active: boolean;
  claim: OutsideClaim;
}

/** What the claim outside the controlled scopes took, and the controlled scopes it locked and left out. */
export interface OutsideClaim {
  tasks: ClaimedTask[];
  controls: ScopeControlsRow[];
}

/** An agent as dispatch_lock_agents_and_claim sends it (timestamps as ISO 8601 text). */
type AgentTuple = [
  name: string,
  capabilities: string[],
  status: AgentStatus,
  drained: boolean,
  activeTasks: number,
  maxConcurrent: number,
  lastAssignedAt: string | null,
  avoidUntil: string | null,
];

/** A claimed task as dispatch_lock_agents_and_claim sends it (timestamps as ISO 8601 text). */
type ClaimedTuple = [id: string, scope: string, priority: number, avoidAgent: string | null, readyAt: string, rank: string];

/** A scope's controls as the claim sends them (changed_at as ISO 8601 text). */
type ControlsJson = Omit<ScopeControlsRow, 'changed_at'> & { changed_at: string };

/** lockAgentsAndClaimStatement's one row. */
export interface LockedAgentsAndClaimRow {
  took_active: boolean;
  locked_agents: AgentTuple[];
  other_agents: AgentTuple[];
  claimed: ClaimedTuple[];
  controls: ControlsJson[];
}

const fromTuple = ([name, capabilities, status, drained, activeTasks, maxConcurrent, lastAssignedAt, avoidUntil]: AgentTuple): AgentSnapshot => ({
  name,
  capabilities,
  status,
  drained,
  activeTasks,
  maxConcurrent,
  lastAssignedAt: lastAssignedAt === null ? null : new Date(lastAssignedAt),
  avoidUntil: avoidUntil === null ? null : new Date(avoidUntil),
});

/**
 * lockAgentsAndClaim's statement, its values written as literals (all are the broker's own
 * numbers), so that it can travel in one message with the batch's BEGIN
 * (src/db/piggybacked-transaction.ts). Read its rows with readLockedAgentsAndClaim.
 */
export function lockAgentsAndClaimStatement(
  defaultLimit: number,
  claimLimit: number,
  { takeActive = false, share, heldAhead = 0 }: { takeActive?: boolean; share?: AgentShare; heldAhead?: number } = {},
): RawBuilder<LockedAgentsAndClaimRow> {
  const int = (n: number | undefined) => (n === undefined ? sql`NULL` : sql.lit(Math.trunc(n)));
  return sql<LockedAgentsAndClaimRow>`
    SELECT * FROM dispatch_lock_agents_and_claim(${int(defaultLimit)}, ${sql.lit(takeActive)}, ${int(share?.index)}, ${int(share?.of)}, ${int(claimLimit)}, ${int(heldAhead)})`;
}

/** The agents lockAgentsAndClaimStatement locked, the others (unlocked), whether ACTIVE was taken, and its claim. */
export function readLockedAgentsAndClaim([row]: LockedAgentsAndClaimRow[]): LockedAgentsAndClaim {
  if (!row) throw new Error('the agents\' lock returned no row');
  return {
    free: row.locked_agents.map(fromTuple),
    others: row.other_agents.map((agent) => ({ ...fromTuple(agent), unlocked: true })),
    active: row.took_active,
    claim: {
      tasks: row.claimed.map(([id, scope, priority, avoid_agent, readyAt, rank]) => ({
        id,
        scope,
        priority,
        avoid_agent,
        ready_at: new Date(readyAt),
        rank: new Date(rank),
      })),
      controls: row.controls.map((c) => ({ ...c, changed_at: new Date(c.changed_at) })),
    },
  };
}

/** Which of the free agents a batch locks: every `of`-th in name order, from the `index`-th (0-based). */
export interface AgentShare {
  index: number;
  of: number;
}

/** Every agent, unlocked: for explaining why a pending task waits (src/assignment/placement.ts). */
export async function readAllAgents(db: Db | Tx, defaultLimit: number): Promise<AgentSnapshot[]> {
  const { rows } = await sql<AgentRowForPlacement>`SELECT ${agentColumns('a', defaultLimit)} FROM ${agentsWithReleases('a')} ORDER BY a.name`.execute(db);
  return rows.map(toSnapshot);
}

export interface ClaimedTask {
  id: string;
  scope: string;
  priority: number;
  avoid_agent: string | null;
  /** When it became ready: run_at for a delayed task, else created_at (aging counts from here). */
  ready_at: Date;
  /** The claim order (migration 0012): rank, then id. */
  rank: Date;
}

/** The claim's order (the ORDER BY of claimPendingTasks), for merging two claims of one batch: keep them in step. */
export function inClaimOrder(a: ClaimedTask, b: ClaimedTask): number {
  return a.rank.getTime() - b.rank.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Takes the next pending tasks some free agent could serve, in rank order: most urgent first
 * once aging is counted (migration 0012: rank = ready time + (priority - 1) x aging_ms), then
 * oldest. SKIP LOCKED: rows another transaction holds (a cancel in flight, another assigner) are
 * passed over instead of waited for. The statement is dispatch_claim_pending_tasks (migration
 * 0029), which a session plans once: sent with its values as parameters, it was planned anew for
 * every batch, and planning it cost about four times what running it did.
 *
 * Each servable scope is walked on its own on dispatch_tasks_pending_scope_rank_idx (migration
 * 0017), and the earliest entries of all of them are the candidates: a backlog of scopes nobody
 * free serves is never stepped over. The candidates are locked in claim order, passing over rows
 * another transaction holds, up to `limit`; 64 more candidates than `limit` keep a claim whole
 * while that many at the head of the queue are held elsewhere.
 *
 * Its planner settings are the function's own. Each scope's index is already in claim order, and
 * walking it is always right; but when the statistics are stale (a burst of new work before
 * autoanalyze, up to a minute), the planner believes a handful of rows are pending and may as
 * well read another index of the scope and sort all of its rows (measured: 19 ms a scope on a
 * fresh 100 k backlog, 283 ms for the single walk this replaced). Sorts are ruled out (the
 * candidates' top-N sort has no alternative and stays), and JIT with them: the disabled sort's
 * cost prices every plan past jit_above_cost, and compiling a claim took 60 to 280 ms. Sequential
 * scans are off, so that a plan kept from a nearly empty table still locks its candidates by key.
 *
 * Timing (migration 0012): not before not_before (run_at, retry backoff); never after start_by
 * (the due timer expires it; a claim that saw it first assigns it before start_by, since now() is
 * this transaction's start). The locking read repeats the walk's tests: FOR UPDATE rechecks them
 * on the row as it is once locked. Its status test is written so that no partial index on pending
 * tasks matches it: with stale statistics the planner took "every pending row, filtered by id"
 * for cheap, and read 93,500 rows of a requeued backlog to lock 60 (290 ms a claim, seen during a
 * bulk requeue).
 */
export async function claimPendingTasks(tx: Tx, servableScopes: string[], limit: number): Promise<ClaimedTask[]> {
  if (servableScopes.length === 0) return [];
  const { rows } = await claimStatement(servableScopes, limit, 0, false).execute(tx);
  return rows.filter((row): row is ClaimedTask & typeof row => row.id != null);
}

/**
 * The claim statement (dispatch_claim_pending_tasks) for the tasks of `scopes`. `heldAhead`: how
 * many rows at the head of the queue batches running beside this one may hold
 * (Assigner.drainSideBySide), walked past as the allowance is. With `lockControls`, the controlled
 * scopes among `scopes` are locked and left out, as the batch's first statement claims
 * (lockAgentsAndClaim). Exported for the benchmark, which EXPLAINs it (bench/scenarios/common.ts
 * explainClaim), and for tests of the claim alone.
 */
export function claimStatement(scopes: string[], limit: number, heldAhead: number, lockControls: boolean) {
  return sql<Partial<ClaimedTask> & { controls: ControlsJson[] }>`
    SELECT * FROM dispatch_claim_pending_tasks(${scopes}::text[], ${limit}::integer, ${heldAhead}::integer, ${lockControls})`;
}

export interface Assignment {
  taskId: string;
  agent: string;
  placement: unknown;
}

export interface AppliedAssignment {
  id: string;
  assignee: string;
  attempt: number;
  /** For the assign span of a traced task (src/observability/tracing.ts). */
  scope: string;
  traceparent: string | null;
  created_at: Date;
  assigned_at: Date;
}

/**
 * Writes a batch of decisions in one statement (the SQL function dispatch_apply_assignments,
 * migration 0026, planned once per session: sent as a literal statement beside COMMIT, it was
 * planned anew for every batch): the tasks (new attempt, deadline), their `assigned` events, and
 * the agents' last-assignment stamp. The `status = 'pending'` guard makes it a no-op for a task
 * that changed since it was claimed.
 *
 * The tasks are found by primary key, as the claim finds its candidates, and for the same reason:
 * written plainly, the guard matches the partial indexes on pending tasks, and with statistics
 * from before a backlog arrived the planner hash-joined the decisions against every pending row
 * (93,000 of them read to update 500: 16 of the statement's 54 ms in the drain benchmark).
 */
export async function applyAssignments(tx: Tx, assignments: Assignment[]): Promise<AppliedAssignment[]> {
  if (assignments.length === 0) return [];
  return (await applyAssignmentsStatement(assignments).execute(tx)).rows;
}

/**
 * applyAssignments' statement, the decisions written as one dollar-quoted literal, so that it can
 * travel in one message with the batch's COMMIT (src/db/piggybacked-transaction.ts).
 * `assignments` must not be empty.
 */
export function applyAssignmentsStatement(assignments: Assignment[]): RawBuilder<AppliedAssignment> {
  // One JSON document, not three arrays: a jsonb[] parameter is escaped element by element by the
  // driver and parsed twice by the server (array, then each jsonb), which cost more than the
  // update itself for a batch of 2,000 placements (~1.4 kB each).
  const decisions = JSON.stringify(assignments.map((a) => ({ id: a.taskId, agent: a.agent, placement: a.placement })));
  return sql<AppliedAssignment>`SELECT * FROM dispatch_apply_assignments(${sql.raw(dollarQuoted(decisions))}::jsonb, ${sql.lit(DEADLINE_NOTICE_WITHIN_MS)})`;
}

/**
 * `text` as a dollar-quoted literal, its tag one the text does not contain (agent and scope names
 * are the callers' own). Nothing inside is escaped, so it costs nothing to build: the driver's
 * escapeLiteral walks the text a character at a time, 100 ms and more for a batch of 500
 * placements (about 700 kB), which halved the drain (docs/BENCHMARKS.md, session 19).
 */
function dollarQuoted(text: string): string {
  let tag = '$decisions$';
  for (let n = 0; text.includes(tag); n++) tag = `$decisions${n}$`;
  return `${tag}${text}${tag}`;
}

/** The decision recorded with the task's latest `assigned` event, or null if it was never placed. */
export async function lastPlacement(db: Db, taskId: string): Promise<unknown> {
  const row = await db
    .selectFrom('dispatch_task_events')
    .select('placement')
    .where('task_id', '=', taskId)
    .where('event', '=', 'assigned')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.placement ?? null;
}

/**
 * Records `unmatched` once for pending tasks that no agent could take even when free (nobody
 * has the capability, or everyone who has it is drained, stopped, degraded or unknown).
 *
 * Reads dispatch_tasks_unmarked_idx (migration 0005) twice: first the distinct scopes still
 * waiting to be judged, one index probe each (a loose index scan: PostgreSQL has no skip scan),
 * then only the tasks of the scopes nobody serves. The work is proportional to the scopes and to
 * the tasks marked, never to the backlog.
 */
export async function markUnmatched(db: Db, capableScopes: string[], limit: number): Promise<number> {
  const { rows } = await sql<{ marked: number }>`
    WITH RECURSIVE waiting(scope) AS (
      (SELECT scope FROM dispatch_tasks
        WHERE status = 'pending' AND unmatched_at IS NULL ORDER BY scope LIMIT 1)
      UNION ALL
      SELECT (SELECT d.scope FROM dispatch_tasks d
               WHERE d.status = 'pending' AND d.unmatched_at IS NULL AND d.scope > w.scope
               ORDER BY d.scope LIMIT 1)
        FROM waiting w WHERE w.scope IS NOT NULL
    ), orphaned AS (
      SELECT array_agg(scope) AS scopes FROM waiting
       WHERE scope IS NOT NULL AND NOT (scope = ANY (${capableScopes}::text[]))
    ), t AS (
      UPDATE dispatch_tasks SET unmatched_at = now()
       WHERE id IN (
         SELECT id FROM dispatch_tasks
          WHERE status = 'pending' AND unmatched_at IS NULL AND scope = ANY ((SELECT scopes FROM orphaned)::text[])
          LIMIT ${limit}
            FOR UPDATE SKIP LOCKED)
      RETURNING id, scope
    ), e AS (
      INSERT INTO dispatch_task_events (task_id, event, payload)
      SELECT id, 'unmatched', jsonb_build_object('task_id', id, 'scope', scope) FROM t
    )
    SELECT count(*)::int AS marked FROM t`.execute(db);
  return rows[0]?.marked ?? 0;
}

/** Scopes some agent could serve once free (the view dispatch_capable_scopes, migration 0005). */
export async function readCapableScopes(db: Db): Promise<string[]> {
  const { rows } = await sql<{ scope: string }>`SELECT scope FROM dispatch_capable_scopes`.execute(db);
  return rows.map((r) => r.scope);
}

/** Asks for an assignment pass the way the triggers do: NOTIFY dispatch_assign at commit unless an assigner is draining (migrations 0002, 0019). */
export async function requestAssignment(db: Db): Promise<void> {
  await sql`SELECT dispatch_request_assignment()`.execute(db);
}

/** Asks for a pass at `due` (one job per second of due time, as a retry backoff does; migration 0002). */
export async function requestAssignmentAt(db: Db | Tx, due: Date): Promise<void> {
  await sql`SELECT dispatch_request_assignment_at(${due}::timestamptz)`.execute(db);
}

/** Queues one more assignment pass unconditionally: a stopping assigner hands its work over. */
export async function enqueueAssignmentRun(db: Db): Promise<void> {
  await sql`SELECT graphile_worker.add_job(${JOB.assignmentRun}::text, max_attempts := 3)`.execute(db);
}
