import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { AgentRow, AgentStatus } from '../db/schema.js';

export interface Registration {
  name: string;
  capabilities: string[];
  status: AgentStatus;
  maxConcurrent: number | null;
}

/**
 * Standalone registration and heartbeat in one upsert. Rows are only rewritten when something
 * changed besides the heartbeat stamp... except last_seen_at itself, which is the heartbeat.
 */
export async function registerAgent(db: Db, r: Registration): Promise<AgentRow> {
  const { rows } = await sql<AgentRow>`
    INSERT INTO dispatch_agents (name, capabilities, status, source, max_concurrent, last_seen_at)
    VALUES (${r.name}, ${r.capabilities}::text[], ${r.status}, 'standalone', ${r.maxConcurrent}, now())
    ON CONFLICT (name) DO UPDATE
       SET capabilities = excluded.capabilities, status = excluded.status, source = 'standalone',
           max_concurrent = excluded.max_concurrent, last_seen_at = now()
    RETURNING *`.execute(db);
  return rows[0]!;
}

export async function listAgents(db: Db): Promise<AgentRow[]> {
  return await db.selectFrom('dispatch_agents').selectAll().orderBy('name').execute();
}

export async function findAgent(db: Db, name: string): Promise<AgentRow | undefined> {
  return await db.selectFrom('dispatch_agents').selectAll().where('name', '=', name).executeTakeFirst();
}

/**
 * Drain state lives in the row, so every replica sees it at once. Draining an agent Dispatch has
 * not seen yet creates its row (drained), so it gets nothing when it does appear.
 */
export async function setDrained(db: Db, name: string, drained: boolean, by: string): Promise<AgentRow> {
  const { rows } = await sql<AgentRow>`
    INSERT INTO dispatch_agents (name, drained, drained_at, drained_by)
    VALUES (${name}, ${drained}, CASE WHEN ${drained} THEN now() END, CASE WHEN ${drained} THEN ${by} END)
    ON CONFLICT (name) DO UPDATE
       SET drained = excluded.drained, drained_at = excluded.drained_at, drained_by = excluded.drained_by
    RETURNING *`.execute(db);
  return rows[0]!;
}
