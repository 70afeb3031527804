import { Hono } from 'hono';
import type { Db } from '../db/database.js';
import type { ApiEnv } from '../http/context.js';
import { parseTaskId } from '../tasks/task.schemas.js';
import { readsEverything } from '../domain/caller.js';
import { getVisibleTask } from '../tasks/task.service.js';
import { explainPlacement, redactPlacement } from './placement.js';

export interface PlacementRouteDeps {
  db: Db;
  defaultMaxConcurrent: number;
  agingMs: number;
}

/** /api/v1/tasks/:id/placement: why a task is where it is (see explainPlacement). */
export function placementRoutes({ db, defaultMaxConcurrent, agingMs }: PlacementRouteDeps) {
  return new Hono<ApiEnv>().get('/:id/placement', async (c) => {
    const caller = c.get('caller');
    const task = await getVisibleTask(db, parseTaskId(c.req.param('id')), caller);
    const explanation = await explainPlacement(db, task, { defaultMaxConcurrent, agingMs });
    return c.json(readsEverything(caller) ? explanation : redactPlacement(explanation, caller.agent));
  });
}
