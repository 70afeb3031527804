import { Hono } from 'hono';
import type { Db, TaskRow } from '../db/database.js';
import { readBodyText, readJsonBody, readQuery } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import { hasRole, readsEverything, type Caller } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';
import type { Metrics } from '../observability/metrics.js';
import { acceptTraceparent } from '../observability/trace-context.js';
import type { Tracer } from '../observability/tracing.js';
import { taskEventToJson, taskToJson, taskWithDependenciesToJson } from './task.json.js';
import { listDependencies } from './dependencies.queries.js';
import { listDependenciesBatched } from './task.batcher.js';
import { listTaskEvents } from './task.queries.js';
import {
  bulkActionSchema,
  completeTaskSchema,
  failTaskSchema,
  listTasksQuerySchema,
  patchTaskSchema,
  parseTaskId as taskId,
  progressSchema,
} from './task.schemas.js';
import * as service from './task.service.js';
import { requeueTask, runBulkAction } from './bulk.js';

export interface TaskRouteDeps {
  db: Db;
  policy: service.TaskPolicy;
  metrics: Metrics;
  tracer: Tracer;
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
export function taskRoutes({ db, policy, metrics, tracer }: TaskRouteDeps) {
  const transition = (event: string) => metrics.taskTransitions.inc({ event });
  const worker = (caller: Caller) => {
    if (!hasRole(caller, 'worker')) throw new DispatchError('forbidden', 'working on tasks needs a worker credential');
    return caller.agent;
  };
  const dependenciesOf = (id: string) => (db.isTransaction ? listDependencies(db, id) : listDependenciesBatched(db, id));
  const withDependencies = async (task: TaskRow, known = true) => taskWithDependenciesToJson(task, known ? await dependenciesOf(task.id) : []);
  return new Hono<ApiEnv>()
    .post('/', async (c) => {
      const caller = c.get('caller');
      if (!hasRole(caller, 'requester')) throw new DispatchError('forbidden', 'creating tasks needs a requester credential');
      const receivedAtMs = Date.now();
      const text = await readBodyText(c);
      const outcome = await service.submitTask({ db, policy, metrics, tracer }, text, {
        caller: caller.agent,
        idempotencyKey: idempotencyKey(c.req.header('idempotency-key')),
        scopes: caller.scopes,
        readsAllTasks: readsEverything(caller),
        traceparent: acceptTraceparent(c.req.header('traceparent')),
        receivedAtMs,
      });
      if (outcome.replayed) {
        c.header('Idempotent-Replayed', 'true');
        return c.json(await withDependencies(outcome.task), 200);
      }
      c.header('Location', `/api/v1/tasks/${outcome.task.id}`);
      // A new task without depends_on has no edges: no query to say so.
      return c.json(await withDependencies(outcome.task, outcome.hasDependencies), 201);
    })
    .post('/cancel', async (c) => {
      const outcome = await runBulkAction(db, c.get('caller'), 'cancel', await readJsonBody(c, bulkActionSchema));
      metrics.taskTransitions.inc({ event: 'cancelled' }, outcome.changed);
      return c.json(outcome);
    })
    .post('/requeue', async (c) => {
      const outcome = await runBulkAction(db, c.get('caller'), 'requeue', await readJsonBody(c, bulkActionSchema));
      metrics.taskTransitions.inc({ event: 'requeued' }, outcome.changed);
      return c.json(outcome);
    })
    .post('/:id/requeue', async (c) => {
      const id = taskId(c.req.param('id'));
      await requeueTask(db, c.get('caller'), id);
      transition('requeued');
      return c.json(taskToJson(await service.getTask(db, id)));
    })
    .get('/', async (c) => {
      const query = readQuery(c, listTasksQuerySchema);
      const page = await service.listTasks(db, query, c.get('caller'));
      return c.json({ tasks: page.tasks.map(taskToJson), next_cursor: page.nextCursor });
    })
    .get('/:id', async (c) => {
      const id = taskId(c.req.param('id'));
      // Both reads at once (each in its own batch): the answer waits for one round trip, not two.
      // A task the caller may not read is 404 whatever its dependencies.
      const [task, dependencies] = await Promise.all([service.getVisibleTask(db, id, c.get('caller')), dependenciesOf(id)]);
      return c.json(taskWithDependenciesToJson(task, dependencies));
    })
    .get('/:id/events', async (c) => {
      const id = taskId(c.req.param('id'));
      await service.getVisibleTask(db, id, c.get('caller'));
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
      const task = await service.reportProgress(db, { taskId: id, agent: worker(c.get('caller')), attempt }, payload);
      transition('progress');
      return c.json(taskToJson(task));
    })
    .post('/:id/complete', async (c) => {
      const id = taskId(c.req.param('id'));
      const body = await readJsonBody(c, completeTaskSchema);
      const task = await service.completeTask(db, { taskId: id, agent: worker(c.get('caller')), attempt: body.attempt }, body.result);
      transition('completed');
      tracer.finished(task);
      return c.json(taskToJson(task));
    })
    .post('/:id/fail', async (c) => {
      const id = taskId(c.req.param('id'));
      const body = await readJsonBody(c, failTaskSchema);
      const call = { taskId: id, agent: worker(c.get('caller')), attempt: body.attempt };
      const task = await service.failTask(db, policy, call, body.error, body.retryable);
      transition(task.status === 'pending' ? 'fail_retry' : 'failed');
      tracer.finished({ ...task, status: 'failed', completed_at: task.completed_at ?? new Date() });
      return c.json(taskToJson(task));
    });
}
