/**
 * Aging (migration 0012): a pending task gains one level of priority per `agingMs` it has waited
 * since it became ready (run_at for a delayed task, else its creation), never past the most
 * urgent level. The claim orders by the stored rank, which sorts exactly as this does (ties aside),
 * so what the placement explanation shows is what the claim did.
 */

/** 1 is the most urgent priority, 5 the least (dispatch_tasks_priority_check). */
export const MOST_URGENT_PRIORITY = 1;

/** The priority a task competes with after waiting since `readyAt`; `agingMs` 0 means no aging. */
export function effectivePriority(priority: number, readyAt: Date, now: Date, agingMs: number): number {
  if (agingMs <= 0) return priority;
  const waited = Math.max(0, now.getTime() - readyAt.getTime());
  return Math.max(MOST_URGENT_PRIORITY, priority - Math.floor(waited / agingMs));
}

/**
 * The longest a task of `priority` can wait, once ready, before it is ahead of every task of the
 * most urgent priority that became ready after it: (priority - 1) x agingMs. After that it waits
 * only for the work already ahead of it.
 */
export function agingBoundMs(priority: number, agingMs: number): number {
  return (priority - MOST_URGENT_PRIORITY) * agingMs;
}
