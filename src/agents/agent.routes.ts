import { Hono, type MiddlewareHandler } from 'hono';
import type { Db } from '../db/database.js';
import { readJsonBody } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import { DispatchError } from '../domain/errors.js';
import { agentIdSchema, coversScope, hasRole } from '../domain/caller.js';
import { agentToJson } from './agent.json.js';
import * as q from './agent.queries.js';
import { registerAgentBatched } from './agent.batcher.js';
import { registrationSchema } from './agent.schemas.js';

/** The :id of an agent route, checked. */
export function agentName(raw: string): string {
  if (!agentIdSchema.safeParse(raw).success) {
    throw new DispatchError('validation_failed', 'invalid agent id', [{ field: 'id', message: 'printable ASCII without spaces, at most 200 characters' }]);
  }
  return raw;
}

export interface AgentRouteDeps {
  db: Db;
  admin: MiddlewareHandler<ApiEnv>;
  /** Observers and admins. */
  reader: MiddlewareHandler<ApiEnv>;
  defaultMaxConcurrent: number;
  agentsFromWarren: boolean;
}

/** /api/v1/agents: standalone registration, the admin capability map, drain and undrain. */
export function agentRoutes({ db, admin, reader, defaultMaxConcurrent, agentsFromWarren }: AgentRouteDeps) {
  const show = (row: Parameters<typeof agentToJson>[0]) => agentToJson(row, defaultMaxConcurrent);
  return new Hono<ApiEnv>()
    .get('/', reader, async (c) => c.json({ agents: (await q.listAgents(db)).map(show) }))
    .get('/:id', reader, async (c) => {
      const agent = await q.findAgent(db, agentName(c.req.param('id')));
      if (!agent) throw new DispatchError('not_found', `agent ${c.req.param('id')} not found`);
      return c.json(show(agent));
    })
    .put('/:id', async (c) => {
      const name = agentName(c.req.param('id'));
      if (agentsFromWarren) {
        throw new DispatchError('conflict', 'agents come from Warren in this deployment: register the agent with Warren, not with Dispatch');
      }
      const caller = c.get('caller');
      if (!caller.admin && (caller.agent !== name || !hasRole(caller, 'worker'))) {
        throw new DispatchError('forbidden', `only agent ${name} itself, with a worker credential (or an admin), may register it`);
      }
      const body = await readJsonBody(c, registrationSchema);
      const outside = body.capabilities.filter((tag) => !coversScope(caller, tag));
      if (outside.length > 0) {
        throw new DispatchError('validation_failed', `capabilities outside this credential's scopes: ${outside.join(', ')}`, [
          { field: 'capabilities', message: `not in the credential's scopes: ${outside.join(', ')}` },
        ]);
      }
      const agent = await registerAgentBatched(db, {
        name,
        capabilities: [...new Set(body.capabilities)],
        status: body.status,
        maxConcurrent: body.max_concurrent ?? null,
      });
      return c.json(show(agent));
    })
    .post('/:id/drain', admin, async (c) => {
      return c.json(show(await q.setDrained(db, agentName(c.req.param('id')), true, c.get('caller').actor)));
    })
    .delete('/:id/drain', admin, async (c) => {
      return c.json(show(await q.setDrained(db, agentName(c.req.param('id')), false, c.get('caller').actor)));
    });
}
