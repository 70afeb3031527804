import { sql, type Transaction } from 'kysely';
import { ADVISORY_LOCK } from '../db/contract.js';
import type { Db } from '../db/database.js';
import { prepared } from '../db/prepared.js';
import type { DB } from '../db/generated/database.js';
import type { StoredTaskEvent } from './subjects.js';

/**
 * The outbox's SQL (table and trigger: migration 0004). Replicas publish one at a time: a batch is
 * read, published and deleted inside one transaction holding a transaction-level advisory lock,
 * so a second replica waits for the first one's commit and then sees its deletions. Events of
 * one task are committed in id order (each writes the task's row, so they serialise on its row
 * lock), so reading in id order and publishing a task's events one after another keeps per-task
 * order across batches, crashes and takeovers.
 */

/**
 * A replica that dies or hangs mid-batch (partitioned from the database, stuck in GC) must not
 * block the others for the minutes TCP keepalive would take: Postgres ends its idle transaction
 * after this, releasing the lock, and another replica republishes the batch. JetStream drops the
 * copies: the stream's duplicate window (stream.ts) is well above this.
 */
const PUBLISHER_IDLE_LIMIT = '30s';

export type Tx = Transaction<DB>;

/**
 * An owed event: a task event, or a scope event (migration 0011: scope is set, task_id is null).
 * Both null: the event row was deleted before it was published (by hand; retention keeps owed
 * events), and there is nothing left to send.
 */
export interface OwedEvent extends Omit<StoredTaskEvent, 'task_id'> {
  id: number;
  task_id: string | null;
  scope?: string | null;
}

/** Cheap idle check for the poll loop: an index probe on a table that is usually empty. */
export async function hasOwedEvents(db: Db): Promise<boolean> {
  const { rows } = await sql<{ id: number }>`SELECT id FROM dispatch_event_outbox ORDER BY id LIMIT 1`.execute(db);
  return rows.length > 0;
}

/**
 * Runs `work` as the only publisher, or returns null at once if another replica is publishing.
 * Work done in `work` commits (or rolls back) with the lock's transaction.
 */
export async function asOnlyPublisher<T>(db: Db, work: (tx: Tx) => Promise<T>): Promise<T | null> {
  return await db.transaction().execute(async (tx) => {
    const { rows } = await sql<{ locked: boolean }>`SELECT pg_try_advisory_xact_lock(${ADVISORY_LOCK.outboxPublisher}) AS locked`.execute(tx);
    if (!rows[0]?.locked) return null;
    await sql.raw(`SET LOCAL idle_in_transaction_session_timeout = '${PUBLISHER_IDLE_LIMIT}'`).execute(tx);
    return await work(tx);
  });
}

/**
 * The oldest owed events, in commit-safe id order.
 *
 * Each owed event is looked up by key (the ANY guards), whatever the statistics say: joined
 * plainly, a plan made while the tables were small (a fresh install's first reads, kept prepared,
 * or tables never analysed) merge-joined the outbox with every event ever written, 5,000 read to
 * publish 10 (test/integration/prepared-statements.test.ts) and 160 ms a read at 100,000, growing
 * with history; nothing made it planned again, since the events are never vacuumed away.
 */
export async function readOwedEvents(tx: Tx, limit: number): Promise<OwedEvent[]> {
  const { rows } = await sql<OwedEvent>`${prepared('read_owed_events')}
    WITH owed AS MATERIALIZED (SELECT id FROM dispatch_event_outbox ORDER BY id LIMIT ${limit})
    SELECT o.id, coalesce(e.event_id, s.event_id) AS event_id, e.task_id, s.scope, coalesce(e.event, s.event) AS event,
           coalesce(e.payload, s.payload) AS payload, coalesce(e.created_at, s.created_at) AS created_at, t.traceparent
      FROM owed o
      LEFT JOIN dispatch_task_events e ON e.id = o.id AND e.id = ANY (ARRAY(SELECT id FROM owed))
      LEFT JOIN dispatch_scope_events s ON s.id = o.id AND s.id = ANY (ARRAY(SELECT id FROM owed))
      -- A primary-key probe per task event, for the trace context the task's messages carry on.
      LEFT JOIN dispatch_tasks t ON t.id = e.task_id
     ORDER BY o.id`.execute(tx);
  return rows;
}

/** JetStream acknowledged these: they are no longer owed. */
export async function forgetPublished(tx: Tx, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`${prepared('forget_published')}DELETE FROM dispatch_event_outbox WHERE id = ANY (${ids}::bigint[])`.execute(tx);
}

export interface OutboxBacklog {
  /** Owed events, counted up to `cap` (a long NATS outage must not make the sample itself slow). */
  events: number;
  /** Age of the oldest owed event in seconds; 0 when nothing is owed. */
  oldestAgeSeconds: number;
}

export async function readBacklog(db: Db, cap = 1_000_000): Promise<OutboxBacklog> {
  const { rows } = await sql<{ events: number; age: number | null }>`
    SELECT (SELECT count(*) FROM (SELECT 1 FROM dispatch_event_outbox LIMIT ${cap}) c)::int AS events,
           (SELECT extract(epoch FROM now() - created_at)::float8 FROM dispatch_event_outbox ORDER BY id LIMIT 1) AS age`.execute(db);
  const row = rows[0];
  return { events: row?.events ?? 0, oldestAgeSeconds: Math.max(0, row?.age ?? 0) };
}

/**
 * With NATS not configured nobody publishes, so owed events would pile up for ever; a replica
 * without NATS forgets those older than `olderThanMs` (far beyond any outage a publishing
 * replica would wait out), a bounded batch at a time.
 *
 * Only the oldest `limit` rows (in id order, the order they were queued in) are looked at: the
 * stale ones are at the head. Asked for the stale rows among all, the statement walked the whole
 * outbox whenever none was stale yet: a day of events, millions of rows, read on every replica at
 * every check.
 */
export async function discardStaleOwedEvents(db: Db, olderThanMs: number, limit = 10_000): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    WITH d AS (
      DELETE FROM dispatch_event_outbox
       WHERE id IN (SELECT id FROM (SELECT id, created_at FROM dispatch_event_outbox ORDER BY id LIMIT ${limit}) oldest
                     WHERE created_at < now() - make_interval(secs => ${olderThanMs / 1000}))
      RETURNING 1
    )
    SELECT count(*)::int AS n FROM d`.execute(db);
  return rows[0]?.n ?? 0;
}

/**
 * Claims interval `slot` of the periodic message `name` for this replica. Exactly one caller
 * per slot gets true, whichever replicas ask and whenever; the slot number comes from the
 * database clock so replicas agree on it.
 */
export async function claimPeriodicSlot(db: Db, name: string, intervalMs: number): Promise<number | null> {
  const { rows } = await sql<{ slot: number }>`
    INSERT INTO dispatch_periodic_publications AS p (name, slot)
    VALUES (${name}, floor(extract(epoch FROM now()) * 1000 / ${intervalMs})::bigint)
    ON CONFLICT (name) DO UPDATE SET slot = EXCLUDED.slot WHERE p.slot < EXCLUDED.slot
    RETURNING slot`.execute(db);
  return rows[0]?.slot ?? null;
}
