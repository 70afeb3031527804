import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { TaskStatus } from '../db/columns.js';

/**
 * The dependency graph (dispatch_task_dependencies, migration 0013). Edges are written once, in
 * the transaction that creates the dependent; releasing and cancelling dependents is done by the
 * database when a dependency ends (dispatch_settle_dependents), whichever path ended it.
 */

export interface Dependency {
  id: string;
  status: TaskStatus;
}

/**
 * The dependencies that exist, locked FOR SHARE in id order until the creating transaction
 * commits: a dependency cannot end between this read and the edges' insert (its ending UPDATE
 * waits, then its trigger sees the new edges), so the dependent's count of open dependencies is
 * exact.
 */
export async function lockDependencies(db: Db, ids: readonly string[]): Promise<Dependency[]> {
  const { rows } = await sql<Dependency>`
    SELECT id, status FROM dispatch_tasks WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR SHARE`.execute(db);
  return rows;
}

export async function insertDependencies(db: Db, taskId: string, dependsOn: readonly string[]): Promise<void> {
  await sql`
    INSERT INTO dispatch_task_dependencies (task_id, depends_on_id)
    SELECT ${taskId}::uuid, unnest(${dependsOn}::uuid[])`.execute(db);
}

/** A task's dependencies with their status now, in id order (edges of deleted tasks are gone). */
/** The dependencies of several tasks in one statement (GET /:id batches its reads). */
export async function listDependenciesOf(db: Db, taskIds: readonly string[]): Promise<Map<string, Dependency[]>> {
  const { rows } = await sql<Dependency & { task_id: string }>`
    SELECT d.task_id, t.id, t.status
      FROM dispatch_task_dependencies d JOIN dispatch_tasks t ON t.id = d.depends_on_id
     WHERE d.task_id = ANY (${taskIds}::uuid[])
     ORDER BY d.task_id, t.id`.execute(db);
  const byTask = new Map<string, Dependency[]>();
  for (const { task_id, ...dependency } of rows) byTask.set(task_id, [...(byTask.get(task_id) ?? []), dependency]);
  return byTask;
}

export async function listDependencies(db: Db, taskId: string): Promise<Dependency[]> {
  const { rows } = await sql<Dependency>`
    SELECT t.id, t.status
      FROM dispatch_task_dependencies d JOIN dispatch_tasks t ON t.id = d.depends_on_id
     WHERE d.task_id = ${taskId}
     ORDER BY t.id`.execute(db);
  return rows;
}
