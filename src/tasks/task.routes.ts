import { Hono } from 'hono';
import type { Db } from '../db/database.js';
import { readBodyText, readJsonBody, readQuery } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import { DispatchError } from '../domain/errors.js';
import type { Metrics } from '../observability/metrics.js';
import { taskEventToJson, taskToJson } from './task.json.js';
import { listTaskEvents } from './task.queries.js';
import {
  completeTaskSchema,
  failTaskSchema,
  listTasksQuerySchema,
  patchTaskSchema,
  parseTaskId as taskId,
  progressSchema,
} from './task.schemas.js';
import * as service from './task.service.js';

export interface TaskRouteDeps {
  db: Db;
  policy: service.TaskPolicy;
  metrics: Metrics;
}

function idempotencyKey(header: string | undefined): string | null {
  if (header === undefined) return null;
  if (header.length < 1 || header.length > 200) {
    throw new DispatchError('validation_failed', 'invalid Idempotency-Key', [
      { field: 'Idempotency-Key', message: '1 to 200 characters' },
    ]);
  }
  return header;
}

/** /api/v1/tasks: create, read, list, and the worker calls (progress, complete, fail). */
export function taskRoutes({ db, policy, metrics }: TaskRouteDeps) {
  const transition = (event: string) => metrics.taskTransitions.inc({ event });
  return new Hono<ApiEnv>()
    .post('/', async (c) => {
      const text = await readBodyText(c);
      const outcome = await service.submitTask({ db, policy, metrics }, text, c.get('caller').agent, idempotencyKey(c.req.header('idempotency-key')));
      if (outcome.replayed) {
        c.header('Idempotent-Replayed', 'true');
        return c.json(taskToJson(outcome.task), 200);
      }
      c.header('Location', `/api/v1/tasks/${outcome.task.id}`);
      return c.json(taskToJson(outcome.task), 201);
    })
    .get('/', async (c) => {
      const query = readQuery(c, listTasksQuerySchema);
      const page = await service.listTasks(db, query);
      return c.json({ tasks: page.tasks.map(taskToJson), next_cursor: page.nextCursor });
    })
    .get('/:id', async (c) => {
      return c.json(taskToJson(await service.getTask(db, taskId(c.req.param('id')))));
    })
    .get('/:id/events', async (c) => {
      const id = taskId(c.req.param('id'));
      await service.getTask(db, id);
      return c.json({ events: (await listTaskEvents(db, id)).map(taskEventToJson) });
    })
    .patch('/:id', async (c) => {
      const id = taskId(c.req.param('id'));
      const body = await readJsonBody(c, patchTaskSchema);
      const task = await service.updateTask(db, id, c.get('caller'), body);
      if (body.status === 'cancelled') transition('cancelled');
      return c.json(taskToJson(task));
    })
    .post('/:id/progress', async (c) => {
      const id = taskId(c.req.param('id'));
      const payload = await readJsonBody(c, progressSchema);
      const attempt = payload.attempt as number | undefined;
      const task = await service.reportProgress(db, { taskId: id, agent: c.get('caller').agent, attempt }, payload);
      transition('progress');
      return c.json(taskToJson(task));
    })
    .post('/:id/complete', async (c) => {
      const id = taskId(c.req.param('id'));
      const body = await readJsonBody(c, completeTaskSchema);
      const task = await service.completeTask(db, { taskId: id, agent: c.get('caller').agent, attempt: body.attempt }, body.result);
      transition('completed');
      return c.json(taskToJson(task));
    })
    .post('/:id/fail', async (c) => {
      const id = taskId(c.req.param('id'));
      const body = await readJsonBody(c, failTaskSchema);
      const call = { taskId: id, agent: c.get('caller').agent, attempt: body.attempt };
      const task = await service.failTask(db, policy, call, body.error, body.retryable);
      transition(task.status === 'pending' ? 'fail_retry' : 'failed');
      return c.json(taskToJson(task));
    });
}
