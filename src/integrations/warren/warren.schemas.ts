import { z } from 'zod';
import { AGENT_STATUSES, type AgentStatus } from '../../db/columns.js';

/** One agent as Warren reports it, its status already mapped onto Dispatch's statuses. */
export interface WarrenAgent {
  name: string;
  status: AgentStatus;
}

const KNOWN_STATUSES: ReadonlySet<string> = new Set(AGENT_STATUSES);

/**
 * Warren's status word as a Dispatch status. Anything Warren may add later ('stopping',
 * 'crashed', ...) becomes 'unknown', which assignment never picks: an agent Dispatch cannot
 * reason about should make tasks wait, not receive them.
 */
export function parseWarrenStatus(raw: string): AgentStatus {
  const status = raw.trim().toLowerCase();
  return KNOWN_STATUSES.has(status) ? (status as AgentStatus) : 'unknown';
}

/** Agent names are Dispatch agent ids, so they obey the same bounds as dispatch_agents.name. */
export const agentNameSchema = z.string().min(1).max(200);

export const warrenAgentSchema = z
  .object({
    name: agentNameSchema,
    // A missing or null status is as good as an unknown one.
    status: z
      .string()
      .nullish()
      .transform((value) => parseWarrenStatus(value ?? '')),
  })
  .transform((agent): WarrenAgent => ({ name: agent.name, status: agent.status }));

/**
 * `GET /admin/agents`: a list of `{name, status}` per the v1 contract. An `{agents: [...]}`
 * envelope is accepted too, since wrapping a list is the usual way such APIs grow.
 */
export const warrenAgentListSchema = z.union([
  z.array(warrenAgentSchema),
  z.object({ agents: z.array(warrenAgentSchema) }).transform((body) => body.agents),
]);
