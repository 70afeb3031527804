import { z } from 'zod';
import { agentIdSchema } from '../domain/caller.js';
import type { ApiDeclarations } from '../http/openapi.js';
import { feedEventJsonSchema } from './assignment-feed.js';
import { feedQuerySchema } from './assignment-feed.routes.js';

/** What assignment-feed.routes.ts serves, as openapi.json documents it. */
export const assignmentFeedDeclarations: ApiDeclarations = {
  tag: { name: 'assignments', description: "An agent's work as it is given and taken: an event stream, or a long poll. docs/AGENTS.md describes both." },
  operations: [
    {
      operationId: 'getAgentAssignments',
      method: 'get',
      path: '/api/v1/agents/{id}/assignments',
      summary: "An agent's assignments: event stream or long poll",
      access: 'that agent, with a worker credential; or an admin',
      description: [
        'Two forms, chosen by `Accept`:',
        '',
        '- **Long poll** (any other `Accept`; the JSON answer documented here): the events after `cursor` at once if there are any, else as soon as one arrives, else after `wait` seconds with none. Without `cursor`, the tasks the agent holds now, as `assigned` events. Pass the answer\'s `cursor` to the next call.',
        '- **Event stream** (`Accept: text/event-stream`, answered `200 text/event-stream`): first the tasks the agent holds (a fresh connect), then each event as it commits. Each event has `id:` (the event id), `event:` (`assigned`, `cancelled`, `reassigned` or `timeout`) and one line of `data:`: the task, as `AssignmentTask`. Comment lines keep the connection alive. Reconnect with `Last-Event-ID` (or `cursor`) to get exactly the events after that one.',
        '',
        'A replica that is shutting down answers 503 with `Retry-After`: reconnect, to another replica.',
      ].join('\n'),
      params: z.object({ id: agentIdSchema }),
      query: feedQuerySchema,
      headers: z.object({
        'Last-Event-ID': z.string().regex(/^\d{1,18}$/).optional().describe('event stream only: resume after this event (browsers send it on reconnect)'),
      }),
      responses: {
        200: {
          description: 'Long poll: the events (possibly none) and the cursor to pass next. With `Accept: text/event-stream`: the event stream (see the description).',
          body: z
            .object({
              events: z.array(feedEventJsonSchema),
              cursor: z.string().regex(/^\d+$/).describe('pass it as `cursor` on the next call'),
            })
            .meta({ id: 'AssignmentPage' }),
        },
      },
    },
  ],
};
