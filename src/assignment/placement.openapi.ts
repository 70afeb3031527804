import type { ApiDeclarations } from '../http/openapi.js';
import { taskIdParams } from '../tasks/task.openapi.js';
import { placementJsonSchema } from './placement.schemas.js';

/** What placement.routes.ts serves, as openapi.json documents it. */
export const placementDeclarations: ApiDeclarations = {
  tag: { name: 'placement', description: 'Why a task went to the agent it did, or why it still waits.' },
  operations: [
    {
      operationId: 'getTaskPlacement',
      method: 'get',
      path: '/api/v1/tasks/{id}/placement',
      summary: 'Explain where a task was placed',
      access: "as GET /api/v1/tasks/{id}; other agents' names and loads only to observers and admins (others see their own entry and a count)",
      description: 'A placed task shows the decision recorded when it was assigned; a pending one is evaluated now against the live directory.',
      params: taskIdParams,
      responses: { 200: { description: 'The explanation.', body: placementJsonSchema } },
      errors: [404],
    },
  ],
};
