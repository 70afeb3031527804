import { sql, type Transaction } from 'kysely';
import { ADVISORY_LOCK } from '../db/contract.js';
import type { Db } from '../db/database.js';
import type { DB } from '../db/generated/database.js';
import { START_WINDOW_MS, type ScopeLimitState } from './scope-limits.js';

type Tx = Transaction<DB>;

/** A scope's row of dispatch_scopes (migration 0011). */
export interface ScopeControlsRow {
  scope: string;
  paused: boolean;
  max_running: number | null;
  max_starts_per_minute: number | null;
  changed_at: Date;
  changed_by: string;
}

/** Start rows older than this are deleted: far beyond the window and any assigning transaction's age. */
const STARTS_KEPT = '5 minutes';

// ---- In the assignment batch (src/assignment/assigner.ts), in this order -------------------

// Step 1: the scope-controls gate (ADVISORY_LOCK.scopeControls), held shared until the batch
// commits. A PATCH takes it exclusively before changing dispatch_scopes, so it waits for batches in
// flight, and batches after it read the change: once a pause has answered, no batch that missed it
// can still commit. Taken by the batch's first statement (dispatch_lock_free_agents, called by
// dispatch_lock_agents_and_claim, migration 0030, which lockAgentsAndClaim in
// src/assignment/assignment.queries.ts calls), so that the statements after it, the claim among
// them, take their snapshots after the gate was granted.

// Step 2: the controlled scopes (paused, or with a limit) among the batch's servable ones, their
// rows locked FOR UPDATE in scope order. Uncontrolled scopes have no row there and pay no lock.
// The lock serialises every batch that may assign tasks of a limited scope, so the usage read next
// (in a later statement, hence a later snapshot) includes every assignment committed before it.
// The batch takes it inside its claim (dispatch_claim_pending_tasks with lock_controls, migration
// 0029, which the batch's first statement calls after the agents' lock, migration 0030).

/**
 * Step 3 (also for explanations, unlocked): tasks assigned or running per scope, from the
 * counters of migration 0008 (a few folded rows per key, never the task table), and starts in
 * the sliding window for the scopes with a rate limit.
 */
export async function readScopeUsage(db: Db | Tx, controls: ScopeControlsRow[]): Promise<ScopeLimitState[]> {
  if (controls.length === 0) return [];
  const { rows } = await sql<{ scope: string; running: number; starts: number; oldest_start_at: Date | null }>`
    SELECT s.scope,
           (SELECT coalesce(sum(c.tasks), 0)::int FROM dispatch_scope_counts c
             WHERE c.scope = s.scope AND c.status IN ('assigned', 'running')) AS running,
           coalesce(w.starts, 0)::int AS starts, w.oldest_start_at
      FROM unnest(${controls.map((c) => c.scope)}::text[], ${controls.map((c) => c.max_starts_per_minute !== null)}::boolean[]) AS s(scope, rated)
      LEFT JOIN LATERAL (
        SELECT sum(x.starts) AS starts, min(x.started_at) AS oldest_start_at FROM dispatch_scope_starts x
         WHERE s.rated AND x.scope = s.scope AND x.started_at > now() - make_interval(secs => ${START_WINDOW_MS / 1000})
      ) w ON true`.execute(db);
  const usage = new Map(rows.map((r) => [r.scope, r]));
  return controls.map((c) => ({
    scope: c.scope,
    paused: c.paused,
    maxRunning: c.max_running,
    running: usage.get(c.scope)?.running ?? 0,
    maxStartsPerMinute: c.max_starts_per_minute,
    starts: usage.get(c.scope)?.starts ?? 0,
    oldestStartAt: usage.get(c.scope)?.oldest_start_at ?? null,
  }));
}

/**
 * Step 4, after the assignments are written: the batch's starts of rate-limited scopes, stamped
 * with the transaction's now() like their assigned events, while the rows are still locked.
 * Rows long out of the window go in the same statement (only this scope's writer can be here).
 */
export async function recordScopeStarts(tx: Tx, starts: Map<string, number>): Promise<void> {
  if (starts.size === 0) return;
  await sql`
    WITH gone AS (
      DELETE FROM dispatch_scope_starts WHERE scope = ANY (${[...starts.keys()]}::text[]) AND started_at < now() - ${STARTS_KEPT}::interval
    )
    INSERT INTO dispatch_scope_starts (scope, started_at, starts)
    SELECT scope, now(), n FROM unnest(${[...starts.keys()]}::text[], ${[...starts.values()]}::int[]) AS s(scope, n)`.execute(tx);
}

// ---- Reads and the change, for the API -------------------------------------------------------

/** Every row of dispatch_scopes (or one scope's), by scope. */
export async function readScopeControls(db: Db, scope?: string): Promise<ScopeControlsRow[]> {
  let query = db.selectFrom('dispatch_scopes').select(['scope', 'paused', 'max_running', 'max_starts_per_minute', 'changed_at', 'changed_by']);
  if (scope !== undefined) query = query.where('scope', '=', scope);
  return await query.orderBy('scope').execute();
}

export interface ScopeChange {
  paused?: boolean | undefined;
  max_running?: number | null | undefined;
  max_starts_per_minute?: number | null | undefined;
}

export type ScopeEventName = 'paused' | 'resumed' | 'limits_changed';

/**
 * Applies a change to a scope's controls under the gate (see step 1 above), records its audit
 * event (queued for NATS by the outbox trigger) and, when the change may free work (resumed, a
 * limit raised or removed), asks for an assignment pass, all in one transaction. Fields left out
 * keep their value. Returns the row after the change and the event written (null for a no-op).
 */
export async function changeScopeControls(db: Db, scope: string, change: ScopeChange, by: string): Promise<{ row: ScopeControlsRow; event: ScopeEventName | null }> {
  return await db.transaction().execute(async (tx) => {
    await sql`SELECT pg_advisory_xact_lock(${ADVISORY_LOCK.scopeControls})`.execute(tx);
    const before = await tx
      .selectFrom('dispatch_scopes')
      .select(['paused', 'max_running', 'max_starts_per_minute'])
      .where('scope', '=', scope)
      .forUpdate()
      .executeTakeFirst();
    const was = before ?? { paused: false, max_running: null, max_starts_per_minute: null };
    const next = {
      paused: change.paused ?? was.paused,
      max_running: change.max_running === undefined ? was.max_running : change.max_running,
      max_starts_per_minute: change.max_starts_per_minute === undefined ? was.max_starts_per_minute : change.max_starts_per_minute,
    };
    const row = await tx
      .insertInto('dispatch_scopes')
      .values({ scope, ...next, changed_by: by })
      .onConflict((oc) => oc.column('scope').doUpdateSet({ ...next, changed_by: by, changed_at: sql<Date>`now()` }))
      .returning(['scope', 'paused', 'max_running', 'max_starts_per_minute', 'changed_at', 'changed_by'])
      .executeTakeFirstOrThrow();
    const limitsChanged = next.max_running !== was.max_running || next.max_starts_per_minute !== was.max_starts_per_minute;
    const event: ScopeEventName | null = next.paused !== was.paused ? (next.paused ? 'paused' : 'resumed') : limitsChanged ? 'limits_changed' : null;
    if (event) {
      const payload = { scope, paused: next.paused, max_running: next.max_running, max_starts_per_minute: next.max_starts_per_minute, changed_by: by };
      await tx.insertInto('dispatch_scope_events').values({ scope, event, changed_by: by, payload: JSON.stringify(payload) }).execute();
    }
    // Resumed, or a limit changed: pending tasks of the scope may be assignable now. The same
    // wake-up the triggers use (migration 0002), so it is seen at commit and never lost.
    if (event === 'resumed' || (limitsChanged && !next.paused)) await sql`SELECT dispatch_request_assignment()`.execute(tx);
    return { row, event };
  });
}
