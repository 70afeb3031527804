import { z } from 'zod';
import type { ApiDeclarations } from '../http/openapi.js';
import { bulkOutcomeJsonSchema } from './bulk.js';
import { taskEventJsonSchema, taskJsonSchema, taskWithDependenciesJsonSchema } from './task.json.js';
import { bulkActionSchema, completeTaskSchema, createTaskSchema, failTaskSchema, listTasksQuerySchema, patchTaskSchema, progressSchema, uuidSchema } from './task.schemas.js';

/** The path parameter of every /api/v1/tasks/{id} route (parseTaskId). */
export const taskIdParams = z.object({ id: uuidSchema.describe('the task id (a UUID)') });

const worker = "the task's assignee, with a worker credential (403 for anyone else while the task is held)";
const visible =
  'its requester, every agent that held it, the requester of its parent, observers and admins; anyone else gets 404, as for an unknown id';
const bulkDescription = (what: string, event: string) =>
  `Walks the matching tasks 500 per transaction (assignment carries on meanwhile) and ${what}, at most \`limit\` per call: \`limit_reached: true\` says more may match. Each task changed gets its \`${event}\` audit and NATS event.`;
const ok = (description: string) => ({ 200: { description, body: taskJsonSchema } });

/** What task.routes.ts serves, as openapi.json documents it. */
export const taskDeclarations: ApiDeclarations = {
  tag: { name: 'tasks', description: 'Ask for work, follow it, and (as the assigned agent) report progress, completion or failure.' },
  operations: [
    {
      operationId: 'createTask',
      method: 'post',
      path: '/api/v1/tasks',
      summary: 'Create a task',
      access: 'a requester, in its credential\'s scopes',
      description:
        'The task is pending until an agent with its scope as a capability is free (`waiting` first while it has `depends_on` not yet ended; not before its `run_at`). A `traceparent` header (W3C) is stored with the task and carried on its NATS events; a malformed one is ignored. A repeated `Idempotency-Key` (per requester) returns the task the first request made, with 200 and `Idempotent-Replayed: true`.',
      headers: z.object({
        traceparent: z.string().optional().describe('W3C trace context: the assignee continues the requester\'s trace'),
        'Idempotency-Key': z.string().min(1).max(200).optional().describe('makes retries safe: the same key from the same requester creates one task'),
      }),
      body: createTaskSchema,
      responses: {
        201: {
          description: 'Created.',
          body: taskWithDependenciesJsonSchema,
          headers: { Location: { description: 'the URL of the new task' } },
        },
        200: {
          description: 'The task an earlier request with the same Idempotency-Key created.',
          body: taskWithDependenciesJsonSchema,
          headers: { 'Idempotent-Replayed': { description: '`true`', schema: z.literal('true') } },
        },
      },
      errors: [409],
    },
    {
      operationId: 'cancelTasks',
      method: 'post',
      path: '/api/v1/tasks/cancel',
      summary: 'Cancel the tasks a filter matches',
      access: 'admins',
      description: bulkDescription('cancels unfinished tasks (waiting, pending, assigned, running)', 'cancelled'),
      body: bulkActionSchema,
      responses: { 200: { description: 'How many tasks were cancelled.', body: bulkOutcomeJsonSchema } },
    },
    {
      operationId: 'requeueTasks',
      method: 'post',
      path: '/api/v1/tasks/requeue',
      summary: 'Requeue the failed or timed-out tasks a filter matches',
      access: 'admins',
      description: bulkDescription('puts failed and timed-out tasks back to pending, as fresh tasks (no error, result or backoff; counts at zero)', 'requeued'),
      body: bulkActionSchema,
      responses: { 200: { description: 'How many tasks were requeued.', body: bulkOutcomeJsonSchema } },
    },
    {
      operationId: 'requeueTask',
      method: 'post',
      path: '/api/v1/tasks/{id}/requeue',
      summary: 'Requeue a failed or timed-out task',
      access: 'admins',
      description: 'The task goes back to pending as a fresh task; its next assignment is a new attempt, so a late call from the old attempt stays fenced off. Any other status answers 409.',
      params: taskIdParams,
      responses: ok('The requeued task.'),
      errors: [404, 409],
    },
    {
      operationId: 'listTasks',
      method: 'get',
      path: '/api/v1/tasks',
      summary: 'List tasks, newest first',
      access: 'any caller: observers and admins (and every caller in header mode) see every task, others the tasks they may read: requested, hold or held in an earlier attempt, or subtasks of their tasks',
      description: 'Pages by `cursor`: pass the `next_cursor` of a page to get the next one; it is null on the last page.',
      query: listTasksQuerySchema,
      responses: {
        200: {
          description: 'One page of tasks.',
          body: z.object({ tasks: z.array(taskJsonSchema), next_cursor: z.string().nullable() }).meta({ id: 'TaskPage' }),
        },
      },
    },
    {
      operationId: 'getTask',
      method: 'get',
      path: '/api/v1/tasks/{id}',
      summary: 'Get a task',
      access: visible,
      params: taskIdParams,
      responses: { 200: { description: 'The task, with its dependencies.', body: taskWithDependenciesJsonSchema } },
      errors: [404],
    },
    {
      operationId: 'listTaskEvents',
      method: 'get',
      path: '/api/v1/tasks/{id}/events',
      summary: "A task's audit trail",
      access: visible,
      params: taskIdParams,
      responses: { 200: { description: 'Every event of the task, oldest first.', body: z.object({ events: z.array(taskEventJsonSchema) }) } },
      errors: [404],
    },
    {
      operationId: 'updateTask',
      method: 'patch',
      path: '/api/v1/tasks/{id}',
      summary: 'Cancel a task and/or replace its context',
      access: 'its requester, or an admin',
      description: 'Both changes in one body happen together or not at all. A finished task answers 409.',
      params: taskIdParams,
      body: patchTaskSchema,
      responses: ok('The task after the change.'),
      errors: [404, 409],
    },
    {
      operationId: 'reportProgress',
      method: 'post',
      path: '/api/v1/tasks/{id}/progress',
      summary: 'Report progress',
      access: worker,
      description:
        'Any JSON object; only a top-level `attempt` is read. The first progress moves an assigned task to running; each one extends the heartbeat deadline.',
      params: taskIdParams,
      body: progressSchema,
      responses: ok('The task.'),
      errors: [404, 409],
    },
    {
      operationId: 'completeTask',
      method: 'post',
      path: '/api/v1/tasks/{id}/complete',
      summary: 'Complete a task',
      access: worker,
      params: taskIdParams,
      body: completeTaskSchema,
      responses: ok('The completed task.'),
      errors: [404, 409],
    },
    {
      operationId: 'failTask',
      method: 'post',
      path: '/api/v1/tasks/{id}/fail',
      summary: 'Fail a task',
      access: worker,
      description: 'A retryable failure with retries left puts the task back to pending (after a backoff); otherwise it is failed.',
      params: taskIdParams,
      body: failTaskSchema,
      responses: ok('The task: pending again for a retry, or failed.'),
      errors: [404, 409],
    },
  ],
};
