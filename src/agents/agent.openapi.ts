import { z } from 'zod';
import { agentIdSchema } from '../domain/caller.js';
import type { ApiDeclarations } from '../http/openapi.js';
import { agentJsonSchema } from './agent.json.js';
import { registrationSchema } from './agent.schemas.js';

const agentIdParams = z.object({ id: agentIdSchema });

const agent = (description: string) => ({ 200: { description, body: agentJsonSchema } });

/** What agent.routes.ts serves, as openapi.json documents it. */
export const agentDeclarations: ApiDeclarations = {
  tag: { name: 'agents', description: 'Standalone registration and heartbeat, the capability map, drain and undrain.' },
  operations: [
    {
      operationId: 'listAgents',
      method: 'get',
      path: '/api/v1/agents',
      summary: 'The capability map',
      access: 'observers and admins',
      responses: { 200: { description: 'Every known agent.', body: z.object({ agents: z.array(agentJsonSchema) }) } },
    },
    {
      operationId: 'getAgent',
      method: 'get',
      path: '/api/v1/agents/{id}',
      summary: 'Get an agent',
      access: 'observers and admins',
      params: agentIdParams,
      responses: agent('The agent.'),
      errors: [404],
    },
    {
      operationId: 'registerAgent',
      method: 'put',
      path: '/api/v1/agents/{id}',
      summary: 'Register an agent, or heartbeat',
      access: 'that agent, with a worker credential whose scopes cover its capabilities; or an admin',
      description:
        'Standalone mode: an agent announces itself and repeats the call as its heartbeat (silent longer than assignment.agent_heartbeat_timeout_ms counts as stopped). In Warren mode agents come from Warren: 409.',
      params: agentIdParams,
      body: registrationSchema,
      responses: agent('The agent as registered.'),
      errors: [409],
    },
    {
      operationId: 'drainAgent',
      method: 'post',
      path: '/api/v1/agents/{id}/drain',
      summary: 'Drain an agent',
      access: 'admins',
      description: 'The agent keeps its tasks but gets no new ones, on every replica. An agent not seen yet is recorded drained, so it gets no work when it appears.',
      params: agentIdParams,
      responses: agent('The drained agent.'),
    },
    {
      operationId: 'undrainAgent',
      method: 'delete',
      path: '/api/v1/agents/{id}/drain',
      summary: 'Undrain an agent',
      access: 'admins',
      params: agentIdParams,
      responses: agent('The agent, taking work again.'),
    },
  ],
};
