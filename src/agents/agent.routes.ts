import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import { readJsonBody } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import { DispatchError } from '../domain/errors.js';
import { agentIdSchema } from '../domain/caller.js';
import { agentToJson } from './agent.json.js';
import * as q from './agent.queries.js';
import { registerAgentBatched } from './agent.batcher.js';

const capabilityTag = z.string().trim().min(1).max(200).transform((s) => s.toLowerCase());
const capabilityList = z.array(capabilityTag).max(500);

/** A standalone agent announcing itself; repeated as its heartbeat. */
const registrationSchema = z
  .object({
    capabilities: z.union([
      capabilityList,
      // v1 personas carry a comma-separated list; accept the same text here, under the same rules.
      z
        .string()
        .max(10_000)
        .transform((s) => s.split(',').filter((t) => t.trim() !== ''))
        .pipe(capabilityList),
    ]),
    status: z.enum(['ready', 'busy', 'sleeping', 'degraded', 'stopped']).default('ready'),
    max_concurrent: z.number().int().positive().max(100_000).nullable().optional(),
  })
  .strict();

function agentName(raw: string): string {
  if (!agentIdSchema.safeParse(raw).success) {
    throw new DispatchError('validation_failed', 'invalid agent id', [{ field: 'id', message: 'printable ASCII without spaces, at most 200 characters' }]);
  }
  return raw;
}

export interface AgentRouteDeps {
  db: Db;
  admin: MiddlewareHandler<ApiEnv>;
  defaultMaxConcurrent: number;
}

/** /api/v1/agents: standalone registration, the admin capability map, drain and undrain. */
export function agentRoutes({ db, admin, defaultMaxConcurrent }: AgentRouteDeps) {
  const show = (row: Parameters<typeof agentToJson>[0]) => agentToJson(row, defaultMaxConcurrent);
  return new Hono<ApiEnv>()
    .get('/', admin, async (c) => c.json({ agents: (await q.listAgents(db)).map(show) }))
    .get('/:id', admin, async (c) => {
      const agent = await q.findAgent(db, agentName(c.req.param('id')));
      if (!agent) throw new DispatchError('not_found', `agent ${c.req.param('id')} not found`);
      return c.json(show(agent));
    })
    .put('/:id', async (c) => {
      const name = agentName(c.req.param('id'));
      const caller = c.get('caller');
      if (caller.agent !== name && !caller.admin) {
        throw new DispatchError('forbidden', `only agent ${name} itself (or an admin) may register it`);
      }
      const body = await readJsonBody(c, registrationSchema);
      const agent = await registerAgentBatched(db, {
        name,
        capabilities: [...new Set(body.capabilities)],
        status: body.status,
        maxConcurrent: body.max_concurrent ?? null,
      });
      return c.json(show(agent));
    })
    .post('/:id/drain', admin, async (c) => {
      return c.json(show(await q.setDrained(db, agentName(c.req.param('id')), true, c.get('caller').agent)));
    })
    .delete('/:id/drain', admin, async (c) => {
      return c.json(show(await q.setDrained(db, agentName(c.req.param('id')), false, c.get('caller').agent)));
    });
}
