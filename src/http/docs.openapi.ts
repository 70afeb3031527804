import { z } from 'zod';
import type { ApiDeclarations } from './openapi.js';

/** What docs.ts serves, as openapi.json documents it (the /docs page itself is for people: not an API route). */
export const docsDeclarations: ApiDeclarations = {
  tag: { name: 'meta', description: 'This description of the API.' },
  operations: [
    {
      operationId: 'getOpenApiDocument',
      method: 'get',
      path: '/openapi.json',
      surface: 'public',
      summary: 'This OpenAPI document',
      description: 'Public: it describes the API and holds no data. A browsable page of it is at GET /docs.',
      responses: { 200: { description: 'The OpenAPI 3.1 document.', body: z.record(z.string(), z.unknown()) } },
    },
  ],
};
