import { z } from 'zod';
import type { ApiDeclarations } from '../http/openapi.js';
import { createScheduleSchema, patchScheduleSchema, scheduleJsonSchema } from './schedule.schemas.js';

const scheduleIdParams = z.object({ id: z.uuid().describe('the schedule id (a UUID)') });
const visible = 'its owner, observers and admins; anyone else gets 404, as for an unknown id';
const changes = 'its owner (a requester) or an admin; others who can see it get 403, the rest 404';

/** What schedule.routes.ts serves, as openapi.json documents it. */
export const scheduleDeclarations: ApiDeclarations = {
  tag: { name: 'schedules', description: 'Recurring tasks: a cron expression in a time zone and the task each occurrence creates.' },
  operations: [
    {
      operationId: 'createSchedule',
      method: 'post',
      path: '/api/v1/schedules',
      summary: 'Create a schedule',
      access: "a requester, for a template in its credential's scopes",
      description: 'Each occurrence creates one task across all replicas, owned by the schedule\'s owner.',
      body: createScheduleSchema,
      responses: {
        201: { description: 'Created.', body: scheduleJsonSchema, headers: { Location: { description: 'the URL of the new schedule' } } },
      },
    },
    {
      operationId: 'listSchedules',
      method: 'get',
      path: '/api/v1/schedules',
      summary: 'List schedules',
      access: 'any caller: observers and admins see every schedule, others their own',
      responses: { 200: { description: 'The schedules.', body: z.object({ schedules: z.array(scheduleJsonSchema) }) } },
    },
    {
      operationId: 'getSchedule',
      method: 'get',
      path: '/api/v1/schedules/{id}',
      summary: 'Get a schedule',
      access: visible,
      params: scheduleIdParams,
      responses: { 200: { description: 'The schedule.', body: scheduleJsonSchema } },
      errors: [404],
    },
    {
      operationId: 'updateSchedule',
      method: 'patch',
      path: '/api/v1/schedules/{id}',
      summary: 'Change, pause or resume a schedule',
      access: changes,
      description: 'Fields left out keep their value. Resuming (paused: false) runs from the next occurrence after now.',
      params: scheduleIdParams,
      body: patchScheduleSchema,
      responses: { 200: { description: 'The schedule after the change.', body: scheduleJsonSchema } },
      errors: [404],
    },
    {
      operationId: 'deleteSchedule',
      method: 'delete',
      path: '/api/v1/schedules/{id}',
      summary: 'Delete a schedule',
      access: changes,
      description: 'The tasks it already created are not touched.',
      params: scheduleIdParams,
      responses: { 204: { description: 'Deleted.' } },
      errors: [404],
    },
  ],
};
