import { Hono } from 'hono';
import type { Db } from '../db/database.js';
import { readJsonBody } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import { hasRole } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';
import { createScheduleSchema, parseScheduleId, patchScheduleSchema, scheduleToJson } from './schedule.schemas.js';
import * as service from './schedule.service.js';

/** /api/v1/schedules: recurring tasks. Requesters and admins create; each sees its own (observers and admins all). */
export function scheduleRoutes({ db }: { db: Db }) {
  return new Hono<ApiEnv>()
    .post('/', async (c) => {
      const caller = c.get('caller');
      if (!hasRole(caller, 'requester')) throw new DispatchError('forbidden', 'creating schedules needs a requester credential');
      const body = await readJsonBody(c, createScheduleSchema);
      const schedule = await service.createSchedule(db, caller, body);
      c.header('Location', `/api/v1/schedules/${schedule.id}`);
      return c.json(scheduleToJson(schedule), 201);
    })
    .get('/', async (c) => {
      return c.json({ schedules: (await service.listSchedules(db, c.get('caller'))).map(scheduleToJson) });
    })
    .get('/:id', async (c) => {
      return c.json(scheduleToJson(await service.getVisibleSchedule(db, parseScheduleId(c.req.param('id')), c.get('caller'))));
    })
    .patch('/:id', async (c) => {
      const id = parseScheduleId(c.req.param('id'));
      const body = await readJsonBody(c, patchScheduleSchema);
      return c.json(scheduleToJson(await service.updateSchedule(db, id, c.get('caller'), body)));
    })
    .delete('/:id', async (c) => {
      await service.deleteSchedule(db, parseScheduleId(c.req.param('id')), c.get('caller'));
      return c.body(null, 204);
    });
}
