/**
 * What a scope's controls allow right now: pure, so the assigner (which reads the state under
 * the scope's row lock) and the placement explanation (which reads it unlocked) judge alike.
 */

/** The sliding window of max_starts_per_minute. */
export const START_WINDOW_MS = 60_000;

/** A controlled scope (paused, or with a limit) as an assignment batch or an explanation sees it. */
export interface ScopeLimitState {
  scope: string;
  paused: boolean;
  maxRunning: number | null;
  /** Tasks of the scope assigned or running now (dispatch_scope_counts). */
  running: number;
  maxStartsPerMinute: number | null;
  /** Assignments in the last START_WINDOW_MS (dispatch_scope_starts; 0 while no rate limit is set). */
  starts: number;
  /** The oldest start still in the window: the window frees a start at this instant + START_WINDOW_MS. */
  oldestStartAt: Date | null;
}

/** How many more tasks of the scope may be assigned now: 0 when paused or at a limit; Infinity when unlimited. */
export function scopeBudget(state: ScopeLimitState): number {
  if (state.paused) return 0;
  const byRunning = state.maxRunning === null ? Infinity : state.maxRunning - state.running;
  const byStarts = state.maxStartsPerMinute === null ? Infinity : state.maxStartsPerMinute - state.starts;
  return Math.max(0, Math.min(byRunning, byStarts));
}

/** Why the scope lets no task of it be assigned now, in the words of the placement explanation; null if it does. */
export function scopeWaitReason(state: ScopeLimitState): string | null {
  if (state.paused) return 'scope paused';
  if (state.maxRunning !== null && state.running >= state.maxRunning) {
    return `scope at its limit: ${state.running} of ${state.maxRunning} running`;
  }
  if (state.maxStartsPerMinute !== null && state.starts >= state.maxStartsPerMinute) {
    return `scope at its start rate: ${state.starts} of ${state.maxStartsPerMinute} starts in the last minute`;
  }
  return null;
}

/** Past the instant a start leaves the window, so the pass scheduled for it sees the room (the window is open at its start). */
const WINDOW_MARGIN_MS = 50;

/** When a scope at its start rate may start again (its oldest start leaves the window), or null. */
export function startsFreeAt(state: ScopeLimitState, startsAfterBatch: number, now: Date): Date | null {
  if (state.maxStartsPerMinute === null || startsAfterBatch < state.maxStartsPerMinute) return null;
  return new Date((state.oldestStartAt ?? now).getTime() + START_WINDOW_MS + WINDOW_MARGIN_MS);
}
