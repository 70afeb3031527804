import type { Db } from './database.js';
import { hasErrorCode, SQLSTATE } from './pg-errors.js';

/** PostgreSQL rolled the whole transaction back, and running it again may succeed. */
export function isTransientConflict(error: unknown): boolean {
  return hasErrorCode(error, SQLSTATE.deadlockDetected, SQLSTATE.serializationFailure);
}

/**
 * Runs a single-statement change again when PostgreSQL picked it as a deadlock victim. Such a
 * statement is all or nothing, so a retry cannot apply it twice. A worker call (complete, fail,
 * progress: task row, then its agent's row through the active-task trigger) can deadlock with an
 * agent stopping (agent row, then its tasks' rows through the stop trigger); the chaos suite saw
 * that as a 500 on /complete. Inside a caller's transaction nothing is retried: the whole
 * transaction is gone, and only its owner can run it again.
 */
export async function retryTransientConflicts<T>(db: Db, run: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (db.isTransaction || attempt >= attempts || !isTransientConflict(error)) throw error;
      // The other transaction holds its locks until it commits: give it a moment, with jitter.
      await new Promise((resolve) => setTimeout(resolve, attempt * 10 + Math.random() * 10));
    }
  }
}
