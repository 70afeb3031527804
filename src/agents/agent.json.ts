import type { AgentRow } from '../db/database.js';

const iso = (value: Date | null) => (value ? value.toISOString() : null);

/** An agent as the admin API shows it (v1's capability map, plus load and drain details). */
export function agentToJson(agent: AgentRow, defaultMaxConcurrent: number) {
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
