import { sql } from 'kysely';
import { connect } from 'nats';
import type { Db } from '../../src/db/database.js';
import { readStream } from '../../test/helpers/nats-server.js';
import type { EventRecord, StreamRecord, TaskRecord } from './checks.js';

/** Open work and owed events right now: the queue is drained when both are zero. */
export async function queueState(db: Db, requester: string): Promise<{ total: number; open: number; owed: number }> {
  const { rows } = await sql<{ total: number; open: number; owed: number }>`
    SELECT (SELECT count(*)::int FROM dispatch_tasks WHERE requester = ${requester}) AS total,
           (SELECT count(*)::int FROM dispatch_tasks WHERE requester = ${requester}
                                                       AND status IN ('pending', 'assigned', 'running')) AS open,
           (SELECT count(*)::int FROM dispatch_event_outbox) AS owed`.execute(db);
  return rows[0]!;
}

export async function readTasks(db: Db): Promise<TaskRecord[]> {
  const { rows } = await sql<TaskRecord>`
    SELECT id, status, attempt, assignee, result, error, retry_count, max_retries FROM dispatch_tasks`.execute(db);
  return rows;
}

export async function readEvents(db: Db): Promise<EventRecord[]> {
  const { rows } = await sql<EventRecord>`
    SELECT id, event_id::text AS event_id, task_id, event, agent_id, attempt, payload->>'error' AS error, created_at
      FROM dispatch_task_events ORDER BY id`.execute(db);
  return rows;
}

/** Every message of DISPATCH_EVENTS, through a connection of our own. */
export async function readEventStream(natsUrl: string): Promise<StreamRecord[]> {
  const nc = await connect({ servers: natsUrl, name: 'dispatch-chaos-checker' });
  try {
    return await readStream(nc);
  } finally {
    await nc.close();
  }
}
