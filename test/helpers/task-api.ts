import { randomUUID } from 'node:crypto';
import { afterAll } from 'vitest';
import type { Db } from '../../src/db/database.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { startTestDispatch, type TestDispatch } from './dispatch.js';
import { apiClient, type ApiClient } from './http.js';
import { assignDirectly, createTask } from './tasks.js';

export const MiB = 1024 * 1024;
export const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export interface TaskApi {
  database: TestDatabase;
  db: Db;
  dispatch: TestDispatch;
  /** Calls as requester-1 unless told otherwise. */
  api: ApiClient;
}

/**
 * The task API test files' shared setup, awaited at the top of the file: a database of the
 * file's own, one Dispatch on it, and a client; all stopped and dropped after the file.
 */
export async function useTaskApi(): Promise<TaskApi> {
  const database = await createTestDatabase();
  const dispatch = await startTestDispatch(database.url);
  afterAll(async () => {
    await dispatch.stop();
    await database.drop();
  });
  return { database, db: database.handle.db, dispatch, api: apiClient(dispatch.baseUrl, 'requester-1') };
}

export async function countTasks(db: Db, where: { requester: string }): Promise<number> {
  const row = await db
    .selectFrom('dispatch_tasks')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('requester', '=', where.requester)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** A task created by `api`'s requester and assigned to `worker`. */
export async function assignedTask(api: ApiClient, db: Db, worker: string, body: Record<string, unknown> = {}) {
  const task = await createTask(api, body);
  return await assignDirectly(db, task.id, worker);
}
