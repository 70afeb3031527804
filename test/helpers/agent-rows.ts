import { listAgents } from '../../src/agents/agent.queries.js';
import type { Db } from '../../src/db/database.js';

/**
 * The named agents' rows as a request could have changed them: live load (dispatch_agent_live_load),
 * without updated_at, which the replica's background fold of releases (migration 0022) moves on
 * its own a second after a task finishes.
 */
export async function agentRowsForComparison(db: Db, names: readonly string[]): Promise<unknown[]> {
  return (await listAgents(db)).filter((agent) => names.includes(agent.name)).map(({ updated_at: _, ...agent }) => agent);
}
