import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FeedSession } from '../../src/agents/assignment-feed.queries.js';
import { AssignmentHub } from '../../src/agents/assignment-hub.js';
import type { Db } from '../../src/db/database.js';
import { useTestDatabase } from '../helpers/database.js';
import { captureLogs } from '../helpers/logs.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A replica's assignment hub reads the audit trail once per transaction that gave work: its own
 * assignment batch is read when the batch's COMMIT returns, and the notification that comes back
 * from the server afterwards, naming that transaction (migration 0033), is dropped. A notification
 * that comes while a read runs is read after it unless that read reached its transaction, so a
 * transaction that committed behind the read's snapshot is never missed.
 */
const database = useTestDatabase();

/** The hub's live session, a connection of its own as a replica's LISTEN session is, counting the reads sent on it. */
class CountedSession implements FeedSession {
  reads = 0;
  inFlight = 0;
  /** Runs once, after the next read's answer came back and before the hub gets it. */
  afterNextRead: (() => Promise<void>) | undefined;

  constructor(private readonly connection: pg.Client) {}

  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    this.reads += 1;
    this.inFlight += 1;
    try {
      const result = await this.connection.query<R>(config);
      const hook = this.afterNextRead;
      this.afterNextRead = undefined;
      await hook?.();
      return result;
    } finally {
      this.inFlight -= 1;
    }
  }
}

/**
 * Until no read runs. The hub sends its next read as soon as the last one's answer is handled, in
 * the same turn of the event loop, so a timer that finds none in flight finds the hub idle.
 */
async function hubIdle(): Promise<void> {
  await waitFor(() => session.inFlight === 0, { what: 'the hub idle' });
}

/** One task given to the test's agent with its `assigned` event, committed; its id and the transaction's. */
async function assignOne(db: Db): Promise<{ taskId: string; tx: bigint }> {
  const { rows } = await sql<{ task_id: string; tx: string }>`
    WITH t AS (
      INSERT INTO dispatch_tasks (requester, title, scope, status, assignee, attempt, assigned_at)
      VALUES ('hub-reads', 'one', 'hub-reads', 'assigned', ${agent}, 1, now())
      RETURNING id
    )
    INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt, payload)
    SELECT id, 'assigned', ${agent}, 1, '{}'::jsonb FROM t
    RETURNING task_id, pg_current_xact_id()::text AS tx`.execute(db);
  return { taskId: rows[0]!.task_id, tx: BigInt(rows[0]!.tx) };
}

let connection: pg.Client;
let session: CountedSession;
let hub: AssignmentHub;
let sent: string[];
/** Each test's own agent, whose feed starts empty. */
let agent: string;
let agents = 0;

beforeEach(async () => {
  const { db } = database().handle;
  connection = new pg.Client({ connectionString: database().url });
  await connection.connect();
  session = new CountedSession(connection);
  hub = new AssignmentHub(db, session, { keepaliveMs: 60_000, heartbeatIntervalMs: null }, captureLogs().logger);
  await hub.start();
  sent = [];
  agents += 1;
  agent = `hub-reads-agent-${agents}`;
  let live = false;
  // Joins as the read start() began ends: a wake-up between that loop's last look and its end must not be lost.
  hub.subscribe(agent, { tx: 0n, id: 0 }, {
    send: (items) => sent.push(...items.map((item) => item.event.taskId)),
    caughtUp: () => {
      live = true;
    },
    end: () => {},
  });
  await waitFor(() => live, { what: 'the subscription to be live' });
  await hubIdle();
});

afterEach(async () => {
  await hub.stop();
  await connection.end();
});

describe('the assignment hub', () => {
  it('reads its own batch at its commit, and not again when the batch\'s notification comes back', async () => {
    const db = database().handle.db;
    const own = await assignOne(db);
    hub.notified();
    await waitFor(() => sent.includes(own.taskId), { what: 'the batch sent' });
    await hubIdle();
    const reads = session.reads;

    // The notification of that batch comes back, then another replica's batch is notified.
    hub.notified(own.tx);
    const other = await assignOne(db);
    hub.notified(other.tx);
    await waitFor(() => sent.includes(other.taskId), { what: 'the other batch sent' });

    expect(session.reads - reads).toBe(1);
    expect(sent).toEqual([own.taskId, other.taskId]);
  });

  it('reads again after a read for a transaction that committed while it ran', async () => {
    const db = database().handle.db;
    const first = await assignOne(db);
    let behind: { taskId: string; tx: bigint } | undefined;
    // The read has its snapshot; another batch commits and is notified before the hub has the answer.
    session.afterNextRead = async () => {
      behind = await assignOne(db);
      hub.notified(behind.tx);
    };
    hub.notified(first.tx);

    await waitFor(() => behind !== undefined && sent.includes(behind.taskId), { what: 'the batch that committed behind the read sent' });
    expect(sent).toEqual([first.taskId, behind!.taskId]);
  });
});
