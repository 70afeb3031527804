import type { Db } from '../db/database.js';
import { newId } from '../db/ids.js';
import type { TaskRow } from '../db/schema.js';
import { isDatabaseUnavailable } from '../http/database-errors.js';
import { findTasks, insertTasks, type NewTask } from './task.queries.js';

/**
 * Group commit for the two hottest calls, create and read: requests that arrive while earlier
 * ones are still at the database go to it together, as one statement.
 *
 * Why creates: each creating transaction wakes the assigner (migration 0002: an advisory-lock probe
 * and, when no assigner is draining, a graphile-worker job whose NOTIFY takes PostgreSQL's global
 * notify lock at commit), fires three statement triggers, and waits for its own WAL flush; those
 * costs are per statement, not per row. Measured with pgbench on this 2-core machine (10 clients,
 * same background load): one task per transaction 206 tx/s, ten per transaction 176 tx/s, that is
 * 1,760 tasks/s. Why reads: a primary-key read costs PostgreSQL far less than the round trip
 * around it (a socket write and a backend wake-up on each side), and on 2 cores the server, the
 * database and the clients share the same CPUs.
 *
 * With nothing in flight a request is sent at once, alone, so a lone call pays no extra latency;
 * batches only form under load, where they replace a queue for pool connections. A batch the
 * database refuses is retried item by item, so one bad row never fails its neighbours.
 */
export class Batcher<In, Out> {
  private readonly queue: Array<{ item: In; resolve: (out: Out) => void; reject: (error: unknown) => void }> = [];
  private inFlight = 0;

  constructor(
    /** Runs one batch; returns one output per input, in order. */
    private readonly run: (items: In[]) => Promise<Out[]>,
    /** Batches at the database at once; the rest of the pool stays free for other queries. */
    private readonly maxInFlight = 2,
    /** Upper bound on one statement's rows (and its parameter). */
    private readonly maxBatch = 250,
  ) {}

  submit(item: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      this.inFlight += 1;
      void this.write(batch);
    }
  }

  /** Frees the batch's slot and sends what queued meanwhile. */
  private release(): void {
    this.inFlight -= 1;
    this.pump();
  }

  private async write(batch: Batcher<In, Out>['queue']): Promise<void> {
    let outputs: Out[];
    try {
      outputs = await this.run(batch.map((entry) => entry.item));
    } catch (error) {
      await this.isolate(batch, error);
      this.release();
      return;
    }
    // Send the next batch before answering this one: answering runs every caller's continuation
    // (serialising and writing each response), and the database would sit idle meanwhile.
    this.release();
    batch.forEach((entry, i) => entry.resolve(outputs[i]!));
  }

  /** A failed batch: find the rows the database refuses, so one bad row never fails the others. */
  private async isolate(batch: Batcher<In, Out>['queue'], error: unknown): Promise<void> {
    // With the database unreachable every retry would fail too (and wait for a connection first),
    // so the whole batch fails at once.
    if (batch.length === 1 || isDatabaseUnavailable(error)) {
      for (const entry of batch) entry.reject(error);
      return;
    }
    await Promise.all(
      batch.map(async (entry) => {
        try {
          entry.resolve((await this.run([entry.item]))[0]!);
        } catch (alone) {
          entry.reject(alone);
        }
      }),
    );
  }
}

interface TaskBatchers {
  insert: Batcher<NewTask & { id: string }, TaskRow | undefined>;
  read: Batcher<string, TaskRow | undefined>;
}

const batchers = new WeakMap<Db, TaskBatchers>();

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
      }, 1),
      read: new Batcher(async (ids) => {
        const byId = new Map((await findTasks(db, [...new Set(ids)])).map((row) => [row.id, row]));
        return ids.map((id) => byId.get(id));
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
