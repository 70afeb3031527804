import type { Db } from '../db/database.js';
import { newId } from '../db/ids.js';
import type { TaskRow } from '../db/database.js';
import { Batcher } from '../db/batcher.js';
import { completeTasks, findTasks, insertTasks, toJsonText, type Completion, type NewTask, type WorkerCall } from './task.queries.js';
import { listDependenciesOf, type Dependency } from './dependencies.queries.js';

/**
 * Group commit (src/db/batcher.ts) for the hottest calls: create, read and complete.
 *
 * Why creates: each creating transaction wakes the assigner (migration 0002: an advisory-lock probe
 * and, when no assigner is draining, a graphile-worker job whose NOTIFY takes PostgreSQL's global
 * notify lock at commit), fires three statement triggers, and waits for its own WAL flush; those
 * costs are per statement, not per row. Measured with pgbench on this 2-core machine (10 clients,
 * same background load): one task per transaction 206 tx/s, ten per transaction 176 tx/s, that is
 * 1,760 tasks/s. Why reads: a primary-key read costs PostgreSQL far less than the round trip
 * around it (a socket write and a backend wake-up on each side), and on 2 cores the server, the
 * database and the clients share the same CPUs. Why completions: each was its own commit, WAL
 * flush and run of the statement triggers, and its agent's row update waited for the assignment
 * batch's lock on it; sampled under the agent round trip, 181 of 230 active backends were a
 * completion, 84 of them waiting on a row lock and 74 on the WAL (docs/BENCHMARKS.md).
 */
interface TaskBatchers {
  insert: Batcher<NewTask & { id: string }, TaskRow | undefined>;
  read: Batcher<string, TaskRow | undefined>;
  dependencies: Batcher<string, Dependency[]>;
  complete: Batcher<Completion, TaskRow | undefined>;
}

const batchers = new WeakMap<Db, TaskBatchers>();

/** The most result JSON (in UTF-16 code units, about bytes) one completion statement carries. */
const COMPLETION_BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Under load, a completion statement starts at most this often. A completion is off the path from
 * a new task to its agent, and each statement has a cost of its own (a round trip, five statement
 * triggers, a commit) that its tasks share: back to back, at half the round trip's rate, they ran
 * about 95 a second of 5 tasks each, and the cores they kept busy were the ones every assignment
 * waited for. At 20 ms, 40-45 a second of 11-13 tasks; create -> SDK handler p99 lower in five of
 * six alternating pairs at 500 tasks/s (docs/BENCHMARKS.md, session 34). An agent hears that its
 * completion is stored up to this much later when others completed just before it.
 */
const COMPLETION_INTERVAL_MS = 20;

function batchersFor(db: Db): TaskBatchers {
  let found = batchers.get(db);
  if (!found) {
    found = {
      // One insert at a time: creates then commit in the largest batches, and each batch is one
      // assigner wake-up; against two in flight this gave 1,480 vs 1,330 creates/s, three runs
      // each, alternating, under the same background load. A create never waits for more than
      // the batch ahead of it (while fewer than maxBatch are queued).
      insert: new Batcher(async (tasks) => {
        const byId = new Map((await insertTasks(db, tasks)).map((row) => [row.id, row]));
        return tasks.map((task) => byId.get(task.id));
      }, { maxInFlight: 1 }),
      read: new Batcher(async (ids) => {
        const byId = new Map((await findTasks(db, [...new Set(ids)])).map((row) => [row.id, row]));
        return ids.map((id) => byId.get(id));
      }),
      // GET /:id shows each task's dependencies: one more read per call, batched like the row's.
      dependencies: new Batcher(async (ids) => {
        const byTask = await listDependenciesOf(db, [...new Set(ids)]);
        return ids.map((id) => byTask.get(id) ?? []);
      }),
      // Results may be large (up to the request body limit each): a statement carries at most
      // COMPLETION_BATCH_BYTES of them, beside the 250-row cap.
      complete: new Batcher((completions) => completeTasks(db, completions), {
        maxInFlight: 1,
        weight: { of: (completion) => completion.resultJson?.length ?? 0, max: COMPLETION_BATCH_BYTES },
        minIntervalMs: COMPLETION_INTERVAL_MS,
      }),
    };
    batchers.set(db, found);
  }
  return found;
}

/** Inserts a task (and its `created` event); undefined when its idempotency key was already used. */
export function insertTaskBatched(db: Db, task: NewTask): Promise<TaskRow | undefined> {
  return batchersFor(db).insert.submit({ ...task, id: newId() });
}

/** Reads a task by id (lower-case UUID); undefined when there is none. */
export function findTaskBatched(db: Db, id: string): Promise<TaskRow | undefined> {
  return batchersFor(db).read.submit(id);
}

/** A task's dependencies (id and status), read in a batch with concurrent calls. */
export function listDependenciesBatched(db: Db, taskId: string): Promise<Dependency[]> {
  return batchersFor(db).dependencies.submit(taskId);
}

/** Completes a task the caller holds (see completeTasks); undefined when the call does not apply. */
export function completeTaskBatched(db: Db, call: WorkerCall, result: unknown): Promise<TaskRow | undefined> {
  return batchersFor(db).complete.submit({ call, resultJson: toJsonText(result) });
}
