import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { AgentStatus } from '../db/columns.js';
import type { AgentRow } from '../db/database.js';

/**
 * An AgentRow from `alias` joined to its releases row as `r`: active_tasks is the live load, the
 * row's count less the releases not folded into it yet (migration 0022).
 */
const agentRowColumns = (alias: string) => {
  const a = sql.raw(alias);
  return sql`${a}.name, ${a}.capabilities, ${a}.status, ${a}.source, ${a}.max_concurrent,
    dispatch_agent_live_load(${a}.active_tasks, ${a}.released_folded, r.released) AS active_tasks, ${a}.drained, ${a}.drained_at,
    ${a}.drained_by, ${a}.last_seen_at, ${a}.last_assigned_at, ${a}.wake_requested_at, ${a}.avoid_until, ${a}.created_at, ${a}.updated_at`;
};

/** `written`'s rows (the CTE of an INSERT ... RETURNING *) as AgentRows. */
const asAgentRows = (written: string) =>
  sql`SELECT ${agentRowColumns(written)} FROM ${sql.raw(written)} LEFT JOIN dispatch_agent_releases r ON r.agent = ${sql.raw(written)}.name`;

export interface Registration {
  name: string;
  capabilities: string[];
  status: AgentStatus;
  maxConcurrent: number | null;
}

/**
 * Standalone registrations and heartbeats, several agents in one upsert (last_seen_at is the
 * heartbeat). Rows are written in name order, the order an assignment batch locks agents in:
 * each upsert waits for the agent's row lock, and locking them in any other order could deadlock
 * with a batch. Returns the rows in name order; each name must appear once.
 */
export async function registerAgents(db: Db, registrations: readonly Registration[]): Promise<AgentRow[]> {
  const rows = JSON.stringify(
    registrations.map((r) => ({ name: r.name, capabilities: r.capabilities, status: r.status, max_concurrent: r.maxConcurrent })),
  );
  const result = await sql<AgentRow>`
    WITH written AS (
    INSERT INTO dispatch_agents (name, capabilities, status, source, max_concurrent, last_seen_at)
    SELECT name, capabilities, status, 'standalone', max_concurrent, now()
      FROM jsonb_to_recordset(${rows}::jsonb) AS r(name text, capabilities text[], status text, max_concurrent integer)
     ORDER BY name
    ON CONFLICT (name) DO UPDATE
       SET capabilities = excluded.capabilities, status = excluded.status, source = 'standalone',
           max_concurrent = excluded.max_concurrent, last_seen_at = now()
    RETURNING *
    ) ${asAgentRows('written')}`.execute(db);
  return result.rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function listAgents(db: Db): Promise<AgentRow[]> {
  return (await sql<AgentRow>`SELECT ${agentRowColumns('a')} FROM dispatch_agents a LEFT JOIN dispatch_agent_releases r ON r.agent = a.name ORDER BY a.name`.execute(db)).rows;
}

export async function findAgent(db: Db, name: string): Promise<AgentRow | undefined> {
  return (await sql<AgentRow>`SELECT ${agentRowColumns('a')} FROM dispatch_agents a LEFT JOIN dispatch_agent_releases r ON r.agent = a.name WHERE a.name = ${name}`.execute(db)).rows[0];
}

/**
 * Drain state lives in the row, so every replica sees it at once. Draining an agent Dispatch has
 * not seen yet creates its row (drained), so it gets nothing when it does appear.
 */
export async function setDrained(db: Db, name: string, drained: boolean, by: string): Promise<AgentRow> {
  const { rows } = await sql<AgentRow>`
    WITH written AS (
    INSERT INTO dispatch_agents (name, drained, drained_at, drained_by)
    VALUES (${name}, ${drained}, CASE WHEN ${drained} THEN now() END, CASE WHEN ${drained} THEN ${by} END)
    ON CONFLICT (name) DO UPDATE
       SET drained = excluded.drained, drained_at = excluded.drained_at, drained_by = excluded.drained_by
    RETURNING *
    ) ${asAgentRows('written')}`.execute(db);
  return rows[0]!;
}
