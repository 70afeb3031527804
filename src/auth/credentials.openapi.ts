import { z } from 'zod';
import { agentIdSchema } from '../domain/caller.js';
import type { ApiDeclarations } from '../http/openapi.js';
import { credentialJsonSchema, issuedCredentialJsonSchema, newCredentialSchema } from './credentials.schemas.js';

const agentIdParams = z.object({ id: agentIdSchema });

/** What credentials.routes.ts serves, as openapi.json documents it. */
export const credentialDeclarations: ApiDeclarations = {
  tag: { name: 'credentials', description: "Admins issue, list and revoke agents' credentials (token mode)." },
  operations: [
    {
      operationId: 'issueCredential',
      method: 'post',
      path: '/api/v1/agents/{id}/credentials',
      summary: 'Issue a credential',
      access: 'admins',
      params: agentIdParams,
      body: newCredentialSchema,
      responses: {
        201: {
          description: 'The credential with its token, shown this once (only its hash is kept).',
          body: issuedCredentialJsonSchema,
          headers: { 'Cache-Control': { description: '`no-store`: the token must not be cached' } },
        },
      },
    },
    {
      operationId: 'listCredentials',
      method: 'get',
      path: '/api/v1/agents/{id}/credentials',
      summary: "An agent's credentials",
      access: 'admins',
      description: 'Never a token; with `last_used_at`.',
      params: agentIdParams,
      responses: { 200: { description: "The agent's credentials, revoked ones included.", body: z.object({ credentials: z.array(credentialJsonSchema) }) } },
    },
    {
      operationId: 'revokeCredential',
      method: 'delete',
      path: '/api/v1/agents/{id}/credentials/{credential_id}',
      summary: 'Revoke a credential',
      access: 'admins',
      description: 'Every replica refuses it within a second.',
      params: agentIdParams.extend({ credential_id: z.string().describe('the credential id (a UUID)') }),
      responses: { 200: { description: 'The revoked credential.', body: credentialJsonSchema } },
      errors: [404],
    },
  ],
};
