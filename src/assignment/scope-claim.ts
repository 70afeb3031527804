import type { Transaction } from 'kysely';
import type { DB } from '../db/generated/database.js';
import { scopeBudget, startsFreeAt, type ScopeLimitState } from '../scopes/scope-limits.js';
import { readScopeUsage, recordScopeStarts } from '../scopes/scope.queries.js';
import { claimPendingTasks, inClaimOrder, requestAssignmentAt, type ClaimedTask, type OutsideClaim } from './assignment.queries.js';

type Tx = Transaction<DB>;

/** A controlled scope in one batch: its state as read under its row lock, and what the batch may still assign. */
export interface ControlledScope {
  state: ScopeLimitState;
  remaining: number;
}

/**
 * The batch's claim under the scope controls (dispatch_scopes, migration 0011), from the claim
 * its first statement made outside the controlled scopes (dispatch_lock_agents_and_claim).
 *
 * How a scope limit stays exact, the way an agent's does: the rows of limited scopes are locked
 * FOR UPDATE before their usage is read, and held until the batch commits, so two batches (on
 * any replicas) that could assign tasks of one limited scope run one after the other, the second
 * seeing the first one's assignments in the counters. The batch then assigns at most the budget
 * it read (scopeBudget); completions only lower the usage, so the budget can only be too small.
 * Scopes without controls take no row lock and are claimed exactly as before.
 *
 * Paused scopes and scopes at a limit are left out of the claim, so their backlog is never
 * walked. Each limited scope with room is claimed on its own, at most its budget: in a shared
 * claim a limited scope with a deep, old backlog fills the batch with tasks it may not start
 * and starves the others (measured in test/integration/replicas.scopes.test.ts: a scope limited to
 * 20 ran 4 at a time beside one limited to 5). The claims are merged back into claim order.
 *
 * The first statement took the scope-controls gate and locked the controlled scopes' rows; their
 * usage is read here, by a later statement, whose snapshot includes what the batches that held
 * those rows committed. Without controlled scopes among the servable ones (the usual case) there
 * is nothing more to claim.
 */
export async function claimUnderScopeControls(
  tx: Tx,
  { tasks, controls }: OutsideClaim,
  batchSize: number,
): Promise<{ tasks: ClaimedTask[]; controlled: Map<string, ControlledScope> }> {
  if (controls.length === 0) return { tasks, controlled: new Map() };
  const states = await readScopeUsage(tx, controls);
  const controlled = new Map(states.map((state) => [state.scope, { state, remaining: scopeBudget(state) }]));
  const limited = [...controlled.values()].filter((c) => c.remaining > 0);
  for (const c of limited) tasks.push(...(await claimPendingTasks(tx, [c.state.scope], Math.min(batchSize, c.remaining))));
  if (limited.length > 0) tasks.sort(inClaimOrder);
  return { tasks, controlled };
}

/**
 * After the batch's assignments: records the starts of rate-limited scopes (still under their
 * row locks) and, for a scope now at its start rate, schedules a pass for when its oldest start
 * leaves the window, since no task event will wake the assigner then.
 */
export async function settleScopeStarts(tx: Tx, controlled: Map<string, ControlledScope>, startedByScope: Map<string, number>, now: Date): Promise<void> {
  const rated = [...controlled.values()].filter((c) => c.state.maxStartsPerMinute !== null && !c.state.paused);
  if (rated.length === 0) return;
  const starts = new Map<string, number>();
  for (const { state } of rated) {
    const started = startedByScope.get(state.scope) ?? 0;
    if (started > 0) starts.set(state.scope, started);
    const due = startsFreeAt(state, state.starts + started, now);
    if (due) await requestAssignmentAt(tx, due);
  }
  await recordScopeStarts(tx, starts);
}
