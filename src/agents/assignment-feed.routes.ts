import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import { readQuery } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import { hasRole } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';
import { queryInt } from '../tasks/task.schemas.js';
import { agentName } from './agent.routes.js';
import { feedEventJson, feedTaskJson, startingPoint, type StartingPoint } from './assignment-feed.js';
import type { AssignmentHub, FeedItem, Subscription } from './assignment-hub.js';

/** The longest a long poll may wait (seconds). */
export const MAX_WAIT_SECONDS = 60;
/** A stream whose client stops reading is closed once this many events wait unsent; the client resumes with Last-Event-ID. */
const MAX_QUEUED_EVENTS = 1_000;
/** The longest a long poll waits, past `wait`, for work that committed behind an older, still running transaction. */
const HELD_BACK_LIMIT_MS = 10_000;

/** An event id as a cursor: digits; "0" means before every event. */
const cursorSchema = z.string().regex(/^\d{1,18}$/, 'an event id (digits)').transform(Number);

export const feedQuerySchema = z
  .object({
    wait: queryInt(0, MAX_WAIT_SECONDS).default(0).describe(`long poll: seconds to wait for an event when none is there yet (0 to ${MAX_WAIT_SECONDS})`),
    cursor: cursorSchema.optional().describe('the `cursor` of the previous answer (or an event id): the events after it; "0" for every event the audit trail holds; none: the tasks held now, then what follows'),
  })
  .strict();

export interface AssignmentFeedRouteDeps {
  db: Db;
  hub: AssignmentHub;
}

function lastEventId(c: Context<ApiEnv>): number | undefined {
  const header = c.req.header('last-event-id');
  if (header === undefined || header === '') return undefined;
  const parsed = cursorSchema.safeParse(header.trim());
  if (!parsed.success) {
    throw new DispatchError('validation_failed', 'invalid Last-Event-ID', [{ field: 'Last-Event-ID', message: 'an event id sent by this stream (digits)' }]);
  }
  return parsed.data;
}

const wantsEventStream = (c: Context<ApiEnv>) => /\btext\/event-stream\b/i.test(c.req.header('accept') ?? '');

/**
 * GET /api/v1/agents/:id/assignments: the work given to an agent and taken from it, as an event
 * stream (Accept: text/event-stream) or a long poll (JSON). docs/AGENTS.md describes both.
 */
export function assignmentFeedRoutes({ db, hub }: AssignmentFeedRouteDeps) {
  return new Hono<ApiEnv>().get('/:id/assignments', async (c) => {
    const agent = agentName(c.req.param('id'));
    const caller = c.get('caller');
    if (!caller.admin && (caller.agent !== agent || !hasRole(caller, 'worker'))) {
      throw new DispatchError('forbidden', `only agent ${agent} itself, with a worker credential (or an admin), may read its assignments`);
    }
    const query = readQuery(c, feedQuerySchema);
    if (!hub.accepting) throw shuttingDown(c);
    const stream = wantsEventStream(c);
    const start = await startingPoint(db, agent, (stream ? lastEventId(c) : undefined) ?? query.cursor);
    if (!hub.accepting) throw shuttingDown(c);
    return stream ? openStream(hub, agent, start) : await longPoll(hub, agent, start, query.wait);
  });
}

function shuttingDown(c: Context<ApiEnv>): DispatchError {
  c.header('Retry-After', '1');
  return new DispatchError('unavailable', 'this replica is shutting down; reconnect (to another replica)');
}

const encoder = new TextEncoder();

/** One event of the stream; the data is one line (JSON has no raw newlines). */
function frame(item: FeedItem): Uint8Array {
  return encoder.encode(`id: ${item.event.id}\nevent: ${item.event.kind}\ndata: ${JSON.stringify(feedTaskJson(item))}\n\n`);
}

/**
 * The event stream: the held tasks (on a fresh connect), then everything after the starting
 * point, as it commits. Closed by the client, by a shutdown, or when the client stops reading.
 */
function openStream(hub: AssignmentHub, agent: string, start: StartingPoint): Response {
  let subscription: Subscription | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const end = () => {
        if (subscription) hub.unsubscribe(subscription);
        try {
          controller.close();
        } catch {
          // already closed or cancelled
        }
      };
      const write = (chunk: Uint8Array) => {
        if ((controller.desiredSize ?? 0) < -MAX_QUEUED_EVENTS) return end();
        controller.enqueue(chunk);
      };
      // The first bytes go out at once, so the client knows the stream is open.
      controller.enqueue(encoder.encode(': assignments of ' + agent + '\nretry: 1000\n\n'));
      for (const item of start.held) controller.enqueue(frame(item));
      subscription = hub.subscribe(agent, start.position, {
        send: (items) => {
          for (const item of items) write(frame(item));
        },
        keepalive: () => write(encoder.encode(': keepalive\n\n')),
        end,
      });
    },
    cancel() {
      if (subscription) hub.unsubscribe(subscription);
    },
  });
  return new Response(body, {
    headers: {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      // Proxies (nginx) must pass events on as they come.
      'X-Accel-Buffering': 'no',
      // A stream's connection carries nothing after it: closed with it, it cannot linger half-used.
      Connection: 'close',
    },
  });
}

/**
 * The long poll: answers at once with the held tasks (fresh) or the events after the cursor the
 * audit trail already holds, else as soon as one arrives, else after `wait` seconds with none.
 */
async function longPoll(hub: AssignmentHub, agent: string, start: StartingPoint, waitSeconds: number): Promise<Response> {
  const answer = (items: FeedItem[], cursor: string) => Response.json({ events: items.map(feedEventJson), cursor });
  if (start.held.length > 0) return answer(start.held, start.cursor);
  let finish!: (found: FeedItem[]) => void;
  const answered = new Promise<FeedItem[]>((resolve) => {
    let done = false;
    finish = (found) => {
      if (done) return;
      done = true;
      resolve(found);
    };
  });
  let timer: NodeJS.Timeout | undefined;
  // Work committed behind a transaction still running is sent once that one ends; a stray
  // transaction left open (a psql session) must not hold the poll for longer than this.
  const giveUp = setTimeout(() => finish([]), waitSeconds * 1000 + HELD_BACK_LIMIT_MS);
  const subscription = hub.subscribe(agent, start.position, {
    send: (found) => finish(found),
    // What had committed when the poll came is answered at once; `wait` bounds the wait for new events.
    caughtUp: () => {
      timer = setTimeout(() => finish([]), waitSeconds * 1000);
    },
    end: () => finish([]),
  });
  const items = await answered;
  clearTimeout(timer);
  clearTimeout(giveUp);
  hub.unsubscribe(subscription);
  return answer(items, items.length > 0 ? String(items[items.length - 1]!.event.id) : start.cursor);
}
