import { z } from 'zod';
import type { ApiDeclarations } from '../http/openapi.js';
import { scopeChangeSchema, scopeViewJsonSchema } from './scope.schemas.js';

const scopeParams = z.object({ scope: z.string().min(1).max(200).describe('the scope (a capability), matched trimmed and in lower case') });

/** What scope.routes.ts serves, as openapi.json documents it. */
export const scopeDeclarations: ApiDeclarations = {
  tag: { name: 'scopes', description: "Each scope's queue depth and oldest pending age, and its controls: pause, max_running, max_starts_per_minute." },
  operations: [
    {
      operationId: 'listScopes',
      method: 'get',
      path: '/api/v1/scopes',
      summary: 'Every scope',
      access: 'observers and admins',
      description: 'Every scope that has had open tasks or has controls, by name.',
      responses: { 200: { description: 'The scopes.', body: z.object({ scopes: z.array(scopeViewJsonSchema) }) } },
    },
    {
      operationId: 'getScope',
      method: 'get',
      path: '/api/v1/scopes/{scope}',
      summary: 'Get a scope',
      access: 'observers and admins',
      description: 'Any name answers: a scope without tasks or controls shows zeros and no limits.',
      params: scopeParams,
      responses: { 200: { description: 'The scope.', body: scopeViewJsonSchema } },
    },
    {
      operationId: 'updateScope',
      method: 'patch',
      path: '/api/v1/scopes/{scope}',
      summary: 'Pause, resume or limit a scope',
      access: 'admins',
      description: 'Fields left out keep their value; null removes a limit. Applies to the next assignment batch on every replica.',
      params: scopeParams,
      body: scopeChangeSchema,
      responses: { 200: { description: 'The scope after the change.', body: scopeViewJsonSchema } },
    },
  ],
};
