import { Hono, type MiddlewareHandler } from 'hono';
import type { Db } from '../db/database.js';
import type { ApiEnv } from '../http/context.js';
import { readQueueStats } from './stats.queries.js';

/** /api/v1/stats: the queue at a glance, for admins. */
export function statsRoutes({ db, admin }: { db: Db; admin: MiddlewareHandler<ApiEnv> }) {
  return new Hono<ApiEnv>().get('/', admin, async (c) => c.json(await readQueueStats(db)));
}
