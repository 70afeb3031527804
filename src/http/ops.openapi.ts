import { z } from 'zod';
import type { ApiDeclarations } from './openapi.js';

/** What ops.ts serves on the ops listener (port 8601), as openapi.json documents it. */
export const opsDeclarations: ApiDeclarations = {
  tag: { name: 'ops', description: 'Liveness, readiness and Prometheus metrics, on the ops listener (port 8601), without a credential.' },
  operations: [
    {
      operationId: 'getHealth',
      method: 'get',
      path: '/health',
      surface: 'ops',
      summary: 'Liveness',
      responses: { 200: { description: 'The process answers.', body: z.object({ status: z.literal('ok') }) } },
    },
    {
      operationId: 'getReady',
      method: 'get',
      path: '/ready',
      surface: 'ops',
      summary: 'Readiness',
      description: 'Ready when the database answers, every migration is applied and the job worker pool is alive.',
      responses: {
        200: { description: 'Ready to serve.', body: z.object({ status: z.literal('ready') }) },
        503: { description: 'Not ready: keep traffic away.', body: z.object({ status: z.literal('not ready') }) },
      },
    },
    {
      operationId: 'getMetrics',
      method: 'get',
      path: '/metrics',
      surface: 'ops',
      summary: 'Prometheus metrics',
      description: 'The Prometheus text exposition format; the metrics are listed in docs/OPERATIONS.md.',
      responses: { 200: { description: 'The metrics.', mediaType: 'text/plain', body: z.string() } },
    },
  ],
};
