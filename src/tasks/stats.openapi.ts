import type { ApiDeclarations } from '../http/openapi.js';
import { queueStatsJsonSchema } from './stats.queries.js';

/** What stats.routes.ts serves, as openapi.json documents it. */
export const statsDeclarations: ApiDeclarations = {
  tag: { name: 'stats', description: 'The queue at a glance.' },
  operations: [
    {
      operationId: 'getStats',
      method: 'get',
      path: '/api/v1/stats',
      summary: 'Queue statistics',
      access: 'observers and admins',
      responses: { 200: { description: 'Open work by status, and outcomes over the last 15 minutes.', body: queueStatsJsonSchema } },
    },
  ],
};
