import { Hono } from 'hono';
import type { Db } from '../db/database.js';
import type { ApiEnv } from '../http/context.js';
import { parseTaskId } from '../tasks/task.schemas.js';
import { getTask } from '../tasks/task.service.js';
import { explainPlacement } from './placement.js';

export interface PlacementRouteDeps {
  db: Db;
  defaultMaxConcurrent: number;
}

/** /api/v1/tasks/:id/placement: why a task is where it is (see explainPlacement). */
export function placementRoutes({ db, defaultMaxConcurrent }: PlacementRouteDeps) {
  return new Hono<ApiEnv>().get('/:id/placement', async (c) => {
    const task = await getTask(db, parseTaskId(c.req.param('id')));
    return c.json(await explainPlacement(db, task, defaultMaxConcurrent));
  });
}
