import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import { DispatchError } from '../domain/errors.js';
import { taskJsonSchema, taskToJson } from '../tasks/task.json.js';
import { findTasks } from '../tasks/task.queries.js';
import type { FeedItem } from './assignment-hub.js';
import * as q from './assignment-feed.queries.js';
import { FEED_KINDS } from './assignment-feed.queries.js';

/** Where a stream or long poll starts: the held tasks to send first (none on resume), then events after `position`. */
export interface StartingPoint {
  held: FeedItem[];
  position: q.FeedPosition;
  /** The cursor that stands for `position` (an event id; "0": before every event). */
  cursor: string;
}

/** The cursor "0": everything the audit trail holds for the agent. */
const BEGINNING: q.FeedPosition = { tx: 0n, id: 0 };
/** How long a connect waits for the transactions its snapshot saw running. */
const SNAPSHOT_SETTLE_MS = 30_000;
const SETTLE_POLL_MS = 2;

/**
 * Resuming (a cursor: Last-Event-ID or ?cursor=): the events after that one, nothing else; the
 * client holds what it was sent before. A cursor the audit trail no longer holds (retention
 * deleted its task) starts afresh. Starting afresh: the tasks the agent holds now, as `assigned`
 * events, then what happens after that snapshot.
 */
export async function startingPoint(db: Db, agent: string, cursor: number | undefined): Promise<StartingPoint> {
  if (cursor === 0) return { held: [], position: BEGINNING, cursor: '0' };
  if (cursor !== undefined) {
    const position = await q.positionOfEvent(db, cursor);
    if (position) return { held: [], position, cursor: String(cursor) };
  }
  return await heldNow(db, agent);
}

/**
 * The held tasks as of a point of the feed. The tasks table is read with a snapshot; the
 * transactions that snapshot saw running are waited out, and if one of them gave or took this
 * agent's work, the snapshot missed it and is taken again. Otherwise the snapshot is exactly
 * "every event below its xmax", and the feed continues from there.
 */
async function heldNow(db: Db, agent: string): Promise<StartingPoint> {
  const deadline = Date.now() + SNAPSHOT_SETTLE_MS;
  for (;;) {
    const { snapshot, held } = await q.readHeldTasks(db, agent);
    while (!(await q.transactionsEnded(db, snapshot.running))) {
      if (Date.now() > deadline) throw new DispatchError('unavailable', 'a long transaction holds the audit trail back; retry shortly');
      await sleep(SETTLE_POLL_MS);
    }
    if (await q.changedOutsideSnapshot(db, agent, snapshot)) continue;
    const last = await q.lastEvent(db, agent, snapshot.xmax);
    const tasks = new Map((await findTasks(db, held.map((h) => h.taskId))).map((t) => [t.id, t]));
    return {
      held: held.map((h) => ({
        event: { ...h.event, agent, kind: 'assigned', taskId: h.taskId, attempt: h.attempt },
        task: tasks.get(h.taskId),
      })),
      position: { tx: snapshot.xmax, id: 0 },
      cursor: last ? String(last.id) : '0',
    };
  }
}

/**
 * The task of a feed event (`AssignmentTask` in openapi.json): as GET /api/v1/tasks/:id shows it,
 * with the attempt the event is about; only the id and attempt once retention deleted the task.
 */
export const feedTaskJsonSchema = z
  .union([
    taskJsonSchema.extend({ attempt: z.number().int().describe('the attempt this event is about (the lease to carry on progress, complete and fail)') }),
    z.object({ id: z.uuid(), attempt: z.number().int() }).strict().describe('the task is gone (retention deleted it)'),
  ])
  .meta({ id: 'AssignmentTask' });
export type FeedTaskJson = z.infer<typeof feedTaskJsonSchema>;

/** One long-poll entry (`AssignmentEvent` in openapi.json): the event id (the cursor to resume after it), its kind, and the task. */
export const feedEventJsonSchema = z
  .object({
    id: z.string().regex(/^\d+$/).describe('the event id: the cursor to resume after this event'),
    event: z.enum(FEED_KINDS).describe('assigned: the task is now this agent\'s; cancelled, reassigned, timeout: it no longer is (stop working on it)'),
    task: feedTaskJsonSchema,
  })
  .meta({ id: 'AssignmentEvent' });
export type FeedEventJson = z.infer<typeof feedEventJsonSchema>;

export function feedTaskJson(item: FeedItem): FeedTaskJson {
  if (!item.task) return { id: item.event.taskId, attempt: item.event.attempt };
  return { ...taskToJson(item.task), attempt: item.event.attempt };
}

export function feedEventJson(item: FeedItem): FeedEventJson {
  return { id: String(item.event.id), event: item.event.kind, task: feedTaskJson(item) };
}
