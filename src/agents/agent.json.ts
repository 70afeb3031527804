import { z } from 'zod';
import type { AgentRow } from '../db/database.js';
import { AGENT_SOURCES, AGENT_STATUSES } from '../db/columns.js';

const iso = (value: Date | null) => (value ? value.toISOString() : null);
const when = z.iso.datetime().nullable();

/** An agent as the admin API shows it (`Agent` in openapi.json); `agentToJson` is typed by it. */
export const agentJsonSchema = z
  .object({
    name: z.string(),
    status: z.enum(AGENT_STATUSES),
    capabilities: z.array(z.string()).describe('lower-cased tags; a task goes only to an agent whose tags contain its scope'),
    active_tasks: z.number().int(),
    max_concurrent: z.number().int().describe("the agent's own limit, else the configured default"),
    drained: z.boolean(),
    drained_at: when,
    drained_by: z.string().nullable(),
    source: z.enum(AGENT_SOURCES),
    last_seen_at: when,
    last_assigned_at: when,
  })
  .meta({ id: 'Agent' });
export type AgentJson = z.infer<typeof agentJsonSchema>;

/** An agent as the admin API shows it (v1's capability map, plus load and drain details). */
export function agentToJson(agent: AgentRow, defaultMaxConcurrent: number): AgentJson {
  return {
    name: agent.name,
    status: agent.status,
    capabilities: agent.capabilities,
    active_tasks: agent.active_tasks,
    max_concurrent: agent.max_concurrent ?? defaultMaxConcurrent,
    drained: agent.drained,
    drained_at: iso(agent.drained_at),
    drained_by: agent.drained_by,
    source: agent.source,
    last_seen_at: iso(agent.last_seen_at),
    last_assigned_at: iso(agent.last_assigned_at),
  };
}
