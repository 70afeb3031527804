import { sql } from 'kysely';
import type pg from 'pg';
import type { Db, TaskRow } from '../db/database.js';

/**
 * The assignment feed's SQL (view dispatch_assignment_feed, migration 0010). A position in an
 * agent's feed is (tx, id): the writing transaction and the event id. Reads take only events whose
 * transaction is below the horizon dispatch_feed_horizon(snapshot) (every transaction of this database
 * below it has ended; migration 0024), so a feed read in (tx, id) order never has an event appear
 * behind it later.
 */

export const FEED_KINDS = ['assigned', 'cancelled', 'reassigned', 'timeout'] as const;
export type FeedKind = (typeof FEED_KINDS)[number];

/** A point in the feed: everything at or before it has been sent. */
export interface FeedPosition {
  tx: bigint;
  id: number;
}

export interface FeedEvent extends FeedPosition {
  agent: string;
  kind: FeedKind;
  taskId: string;
  attempt: number;
}

const XID8_MAX = 2n ** 64n - 1n;

/** Orders two positions (negative, zero, positive). */
export function comparePositions(a: FeedPosition, b: FeedPosition): number {
  if (a.tx !== b.tx) return a.tx < b.tx ? -1 : 1;
  return a.id - b.id;
}

/** The current horizon: every transaction of this database below it has committed or rolled back. */
export async function readHorizon(db: Db): Promise<bigint> {
  const { rows } = await sql<{ horizon: string }>`SELECT dispatch_feed_horizon(pg_current_snapshot())::text AS horizon`.execute(db);
  return BigInt(rows[0]!.horizon);
}

/** An event of an agent's feed and its task as the same statement saw it (undefined once retention deleted it). */
export interface FeedItem {
  event: FeedEvent;
  task: TaskRow | undefined;
}

type FeedItemRow = { feed_id: number; feed_tx: string; feed_agent: string; feed_kind: FeedKind; feed_task_id: string; feed_attempt: number } & Record<string, unknown>;

/** The feed's columns, renamed apart from the task's own, and the task's row (`t.*`) beside them. */
const FEED_ITEM_COLUMNS = sql.raw('f.id AS feed_id, f.tx::text AS feed_tx, f.agent AS feed_agent, f.kind AS feed_kind, f.task_id AS feed_task_id, f.attempt AS feed_attempt, t.*');

function toItem(row: FeedItemRow): FeedItem {
  const { feed_id, feed_tx, feed_agent, feed_kind, feed_task_id, feed_attempt, ...task } = row;
  return {
    event: { id: feed_id, tx: BigInt(feed_tx), agent: feed_agent, kind: feed_kind, taskId: feed_task_id, attempt: feed_attempt },
    task: task.id == null ? undefined : (task as unknown as TaskRow),
  };
}

/** A session that keeps what it prepares: the replica's LISTEN connection (src/db/listener.ts). */
export interface FeedSession {
  query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>>;
}

/**
 * The live read, run on every notification: a named statement, prepared once per session, calling
 * dispatch_feed_since (migration 0032), whose own plan is made once per session too and reads the
 * events since `from` by transaction, so its cost follows what the notification carries, not the
 * number of agents connected here or the history. Its horizon is the snapshot's xmin unless an
 * event it read is at or past it: only then does it look which running transactions are of other
 * databases (dispatch_feed_horizon reads every session's state: as part of every read, it doubled
 * the read's time in the round-trip benchmark, 0.6 to 1.1-1.4 ms).
 */
const LIVE_READ = {
  name: 'dispatch_feed_live',
  text: `
    SELECT r.feed_horizon::text AS feed_horizon, r.feed_id, r.feed_tx::text AS feed_tx, r.feed_agent, r.feed_kind,
           r.feed_task_id, r.feed_attempt, (r.feed_task).*
      FROM dispatch_feed_since($1::xid8, $2::text[]) AS r
     ORDER BY r.feed_tx, r.feed_id`,
};

/**
 * The live read: the events of these agents from `from` on with their tasks, and the horizon of
 * the same statement, in one round trip. Events at or past the horizon are counted, not returned
 * (`heldBack`): their transaction committed while an older one of this database is still running,
 * so they are sent on a later read.
 */
export async function readFeedSince(session: FeedSession, from: bigint, agents: readonly string[]): Promise<{ horizon: bigint; ready: FeedItem[]; heldBack: number }> {
  const { rows } = await session.query<FeedItemRow & { feed_horizon: string }>({ ...LIVE_READ, values: [from.toString(), agents] });
  const horizon = BigInt(rows[0]!.feed_horizon);
  const events = rows.filter((row) => row.feed_id !== null).map(({ feed_horizon: _, ...row }) => toItem(row));
  const ready = events.filter((item) => item.event.tx < horizon);
  return { horizon, ready, heldBack: events.length - ready.length };
}

/** One agent's events after `after` and below `below`, in feed order, at most `limit`, with their tasks. */
export async function readAgentFeed(db: Db, agent: string, after: FeedPosition, below: bigint, limit: number): Promise<FeedItem[]> {
  const { rows } = await sql<FeedItemRow>`
    SELECT ${FEED_ITEM_COLUMNS}
      FROM (SELECT * FROM dispatch_assignment_feed
             WHERE agent = ${agent} AND (tx, id) > (${after.tx.toString()}::xid8, ${after.id}::bigint) AND tx < ${below.toString()}::xid8
             ORDER BY tx, id
             LIMIT ${limit}) f
      LEFT JOIN dispatch_tasks t ON t.id = f.task_id
     ORDER BY f.tx, f.id`.execute(db);
  return rows.map(toItem);
}

/**
 * Where a cursor (an event id the agent was sent) stands in the feed; undefined when the audit
 * trail no longer holds that event (retention) or it predates migration 0010.
 */
export async function positionOfEvent(db: Db, id: number): Promise<FeedPosition | undefined> {
  const { rows } = await sql<{ tx: string | null }>`SELECT tx::text AS tx FROM dispatch_task_events WHERE id = ${id}`.execute(db);
  const tx = rows[0]?.tx;
  return tx == null ? undefined : { tx: BigInt(tx), id };
}

/** A held task and the event that gave it to the agent (its current attempt's `assigned`). */
export interface HeldTask {
  taskId: string;
  attempt: number;
  event: FeedPosition;
}

/**
 * A pg_snapshot: transactions below xmin have ended; from xmax on, not started; between, those in
 * xip were running. `running`: those of xip that may write this database (dispatch_feed_running:
 * not those of sessions connected to other databases).
 */
export interface Snapshot {
  text: string;
  xmin: bigint;
  xmax: bigint;
  running: bigint[];
}

function parseSnapshot(text: string, running: string): Snapshot {
  const [xmin, xmax] = text.split(':');
  return { text, xmin: BigInt(xmin!), xmax: BigInt(xmax!), running: running === '' ? [] : running.split(',').map(BigInt) };
}

/** The tasks the agent holds now (assigned or running), in feed order, with the statement's snapshot. */
export async function readHeldTasks(db: Db, agent: string): Promise<{ snapshot: Snapshot; held: HeldTask[] }> {
  const { rows } = await sql<{ snapshot: string; running: string; task_id: string | null; attempt: number | null; id: number | null; tx: string | null }>`
    WITH s AS MATERIALIZED (
      SELECT pg_current_snapshot()::text AS snapshot,
             (SELECT coalesce(string_agg(x::text, ','), '') FROM dispatch_feed_running(pg_current_snapshot()) AS x) AS running)
    SELECT s.snapshot, s.running, h.task_id, h.attempt, h.id, h.tx::text AS tx
      FROM s LEFT JOIN LATERAL (
        SELECT t.id AS task_id, t.attempt, e.id, e.tx
          FROM dispatch_tasks t
          JOIN LATERAL (
            SELECT id, tx FROM dispatch_task_events
             WHERE task_id = t.id AND event = 'assigned' AND attempt = t.attempt
             ORDER BY id DESC LIMIT 1
          ) e ON true
         WHERE t.assignee = ${agent} AND t.status IN ('assigned', 'running')
      ) h ON true
     ORDER BY h.tx, h.id`.execute(db);
  const snapshot = parseSnapshot(rows[0]!.snapshot, rows[0]!.running);
  const held = rows
    .filter((r) => r.task_id !== null)
    .map((r) => ({ taskId: r.task_id!, attempt: r.attempt!, event: { tx: BigInt(r.tx ?? '0'), id: r.id! } }));
  return { snapshot, held };
}

/**
 * Whether an event of this agent was written by a transaction still running when `snapshot` was
 * taken (and has committed since): the snapshot's held tasks do not show it.
 */
export async function changedOutsideSnapshot(db: Db, agent: string, snapshot: Snapshot): Promise<boolean> {
  if (snapshot.running.length === 0) return false;
  const { rows } = await sql<{ changed: boolean }>`
    SELECT EXISTS (
      SELECT 1 FROM dispatch_assignment_feed
       WHERE agent = ${agent} AND tx >= ${snapshot.xmin.toString()}::xid8 AND tx < ${snapshot.xmax.toString()}::xid8
         AND NOT pg_visible_in_snapshot(tx, ${snapshot.text}::pg_snapshot)
    ) AS changed`.execute(db);
  return rows[0]!.changed;
}

/**
 * The agent's last committed event in feed order, before `before` when given: the cursor that
 * stands for that position.
 */
export async function lastEvent(db: Db, agent: string, before = XID8_MAX): Promise<FeedPosition | undefined> {
  const { rows } = await sql<{ id: number; tx: string }>`
    SELECT id, tx::text AS tx FROM dispatch_assignment_feed
     WHERE agent = ${agent} AND tx < ${before.toString()}::xid8
     ORDER BY tx DESC, id DESC LIMIT 1`.execute(db);
  const row = rows[0];
  return row ? { tx: BigInt(row.tx), id: row.id } : undefined;
}

/**
 * Standalone agents with an open stream are alive: one statement for all of them, rows locked
 * in name order like an assignment batch (no deadlock), waiting for rows a batch holds. A stopped
 * agent must register again.
 */
export async function touchAgents(db: Db, agents: readonly string[]): Promise<void> {
  await sql`
    UPDATE dispatch_agents a SET last_seen_at = now()
      FROM (SELECT name FROM dispatch_agents
             WHERE name = ANY(${agents}::text[]) AND source = 'standalone' AND status <> 'stopped'
             ORDER BY name FOR UPDATE) l
     WHERE a.name = l.name`.execute(db);
}

/**
 * touchAgents without waiting: rows another transaction holds (an assignment batch, until it
 * commits) are passed over and returned, for a later try. Waiting for them, the statement sat on
 * every row it had locked and on its transaction id for as long as the batch ran: the next batch
 * queued behind those rows, and every agent's stream behind that id (the feed's horizon).
 */
export async function touchFreeAgents(db: Db, agents: readonly string[]): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    WITH touched AS (
      UPDATE dispatch_agents a SET last_seen_at = now()
        FROM (SELECT name FROM dispatch_agents
               WHERE name = ANY(${agents}::text[]) AND source = 'standalone' AND status <> 'stopped'
               ORDER BY name FOR UPDATE SKIP LOCKED) l
       WHERE a.name = l.name
      RETURNING a.name
    )
    SELECT name FROM dispatch_agents
     WHERE name = ANY(${agents}::text[]) AND source = 'standalone' AND status <> 'stopped'
       AND name NOT IN (SELECT name FROM touched)`.execute(db);
  return rows.map((r) => r.name);
}

/** Whether every one of these transactions has committed or rolled back. */
export async function transactionsEnded(db: Db, xids: readonly bigint[]): Promise<boolean> {
  const { rows } = await sql<{ ended: boolean }>`
    SELECT coalesce(bool_and(pg_xact_status(x) <> 'in progress'), true) AS ended
      FROM unnest(${xids.map(String)}::xid8[]) AS x`.execute(db);
  return rows[0]!.ended;
}
