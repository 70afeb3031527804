import { sql, type Kysely, type Transaction } from 'kysely';
import type { AgentStatus } from '../db/columns.js';
import type { DB } from '../db/generated/database.js';

type Executor = Kysely<DB> | Transaction<DB>;

/** What the directory sync wants one Warren-sourced agent row to say. */
export interface DesiredAgent {
  name: string;
  capabilities: string[];
  maxConcurrent: number | null;
  /** Status to write; also the status of a row inserted while `keepStatus` is set. */
  status: AgentStatus;
  /** Warren listed the agent in this sync: refresh last_seen_at. */
  seen: boolean;
}

/** A row whose status or profile the sync (or a lifecycle event) changed. */
export interface AgentChange {
  name: string;
  status: AgentStatus;
  /** null for a row that did not exist before. */
  previousStatus: AgentStatus | null;
  /** Capabilities or max_concurrent changed (or the row is new): placement may now differ. */
  profileChanged: boolean;
}

export interface UpsertOptions {
  /** Warren's answer is unavailable but still trusted: leave existing statuses as they are. */
  keepStatus: boolean;
  /**
   * last_seen_at is refreshed only when a row changes anyway or when it is older than this, so an
   * idle directory costs no row updates on most syncs (dispatch_agents is read by every
   * assignment; rewriting every row every 2 s would churn it for nothing).
   */
  seenRefreshMs: number;
}

interface ChangeRow {
  name: string;
  status: AgentStatus;
  previous_status: AgentStatus | null;
  profile_changed: boolean;
}

function toChanges(rows: ChangeRow[]): AgentChange[] {
  return rows.map((row) => ({
    name: row.name,
    status: row.status,
    previousStatus: row.previous_status,
    profileChanged: row.profile_changed,
  }));
}

/**
 * Inserts or updates the Warren-sourced rows for these personas in one statement. Only rows
 * whose data differs are written (`IS DISTINCT FROM` guards). drained, active_tasks and the
 * assignment columns are never touched. A same-named standalone row is taken over: in Warren
 * mode PromptForge and Warren are the authority on every agent.
 */
export async function upsertWarrenAgents(db: Executor, agents: readonly DesiredAgent[], options: UpsertOptions): Promise<AgentChange[]> {
  if (agents.length === 0) return [];
  const desired = JSON.stringify(
    agents.map((agent) => ({
      name: agent.name,
      capabilities: agent.capabilities,
      max_concurrent: agent.maxConcurrent,
      status: agent.status,
      seen: agent.seen,
    })),
  );
  // `before` reads the rows as they were when the statement started, which is how the previous
  // status is reported without a second round trip (RETURNING sees only the new row before PG 18).
  const result = await sql<ChangeRow>`
    WITH desired AS (
      SELECT * FROM jsonb_to_recordset(${desired}::jsonb)
        AS d(name text, capabilities text[], max_concurrent integer, status text, seen boolean)
    ), before AS (
      SELECT a.name, a.status, a.capabilities, a.max_concurrent
        FROM dispatch_agents a JOIN desired d ON d.name = a.name
    ), written AS (
      INSERT INTO dispatch_agents AS a (name, capabilities, max_concurrent, status, source, last_seen_at)
      SELECT d.name, d.capabilities, d.max_concurrent, d.status, 'warren', CASE WHEN d.seen THEN now() END
        FROM desired d
      ON CONFLICT (name) DO UPDATE SET
        capabilities = EXCLUDED.capabilities,
        max_concurrent = EXCLUDED.max_concurrent,
        source = 'warren',
        status = CASE WHEN ${options.keepStatus}::boolean THEN a.status ELSE EXCLUDED.status END,
        last_seen_at = coalesce(EXCLUDED.last_seen_at, a.last_seen_at)
      WHERE a.capabilities IS DISTINCT FROM EXCLUDED.capabilities
         OR a.max_concurrent IS DISTINCT FROM EXCLUDED.max_concurrent
         OR a.source IS DISTINCT FROM EXCLUDED.source
         OR (NOT ${options.keepStatus}::boolean AND a.status IS DISTINCT FROM EXCLUDED.status)
         OR (EXCLUDED.last_seen_at IS NOT NULL
             AND (a.last_seen_at IS NULL
                  OR a.last_seen_at < now() - make_interval(secs => ${options.seenRefreshMs}::float8 / 1000.0)))
      RETURNING a.name, a.status, a.capabilities, a.max_concurrent
    ), reported AS (
      SELECT w.name, w.status, b.status AS previous_status,
             (b.name IS NULL OR w.capabilities IS DISTINCT FROM b.capabilities
               OR w.max_concurrent IS DISTINCT FROM b.max_concurrent) AS profile_changed
        FROM written w LEFT JOIN before b ON b.name = w.name
    )
    -- A row written only to refresh last_seen_at is not a change anyone needs to react to.
    SELECT * FROM reported
     WHERE profile_changed OR status IS DISTINCT FROM previous_status
     ORDER BY name`.execute(db);
  return toChanges(result.rows);
}

/**
 * Warren-sourced rows whose persona PromptForge no longer lists: status unknown and no
 * capabilities, so neither the sync nor a late lifecycle event ('ready') can make them
 * assignable again. The row stays: it may still hold tasks, and its drain state must survive
 * the persona coming back.
 */
export async function retireMissingWarrenAgents(db: Executor, presentNames: readonly string[]): Promise<AgentChange[]> {
  const result = await sql<ChangeRow>`
    WITH before AS (
      SELECT name, status FROM dispatch_agents
       WHERE source = 'warren' AND NOT (name = ANY(${presentNames}::text[]))
    ), written AS (
      UPDATE dispatch_agents a SET status = 'unknown', capabilities = '{}'
        FROM before b
       WHERE a.name = b.name AND (a.status <> 'unknown' OR a.capabilities <> '{}')
      RETURNING a.name, a.status, b.status AS previous_status
    )
    SELECT name, status, previous_status, true AS profile_changed FROM written ORDER BY name`.execute(db);
  return toChanges(result.rows);
}

/**
 * Status only, for every Warren-sourced row: Warren's status where it lists the agent, else
 * unknown. Used while no persona list is known (PromptForge down since start-up), and with an
 * empty map to mark every agent unknown once Warren has been unreachable too long.
 */
export async function applyWarrenStatuses(
  db: Executor,
  statuses: ReadonlyMap<string, AgentStatus>,
  seenRefreshMs: number,
): Promise<AgentChange[]> {
  const desired = JSON.stringify([...statuses].map(([name, status]) => ({ name, status })));
  const result = await sql<ChangeRow>`
    WITH desired AS (
      SELECT * FROM jsonb_to_recordset(${desired}::jsonb) AS d(name text, status text)
    ), target AS (
      SELECT a.name, a.status AS previous_status, coalesce(d.status, 'unknown') AS status, d.name IS NOT NULL AS seen
        FROM dispatch_agents a LEFT JOIN desired d ON d.name = a.name
       WHERE a.source = 'warren'
    ), written AS (
      UPDATE dispatch_agents a
         SET status = t.status,
             last_seen_at = CASE WHEN t.seen THEN now() ELSE a.last_seen_at END
        FROM target t
       WHERE a.name = t.name
         AND (a.status IS DISTINCT FROM t.status
              OR (t.seen AND (a.last_seen_at IS NULL
                              OR a.last_seen_at < now() - make_interval(secs => ${seenRefreshMs}::float8 / 1000.0))))
      RETURNING a.name, a.status, t.previous_status
    )
    SELECT name, status, previous_status, false AS profile_changed FROM written
     WHERE status IS DISTINCT FROM previous_status
     ORDER BY name`.execute(db);
  return toChanges(result.rows);
}

/**
 * One agent's status, at once (lifecycle events such as `swarm.agent.<name>.ready`). The event
 * is a sign of life, so last_seen_at moves too. Returns the change, or null when no such agent
 * is in the directory (an agent is created by the sync or by registration, never by an event,
 * because an event carries no capabilities).
 */
export async function applyAgentStatus(db: Executor, name: string, status: AgentStatus): Promise<AgentChange | null> {
  // The sub-select locks the row first, so the previous status reported is the one replaced.
  const result = await sql<ChangeRow>`
    UPDATE dispatch_agents a SET status = ${status}, last_seen_at = now()
      FROM (SELECT name, status FROM dispatch_agents WHERE name = ${name} FOR UPDATE) old
     WHERE a.name = old.name
    RETURNING a.name, a.status, old.status AS previous_status, false AS profile_changed`.execute(db);
  return toChanges(result.rows)[0] ?? null;
}
