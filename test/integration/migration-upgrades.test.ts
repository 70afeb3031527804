import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import { createMigrator } from '../../src/db/migrate.js';
import { useTestDatabase } from '../helpers/database.js';

const database = useTestDatabase({ empty: true });

/** Migrations that move data: a database with rows in the old shape, upgraded. */
describe('upgrading a database that holds tasks', () => {
  it('0007 moves each placement decision from the task row to the assigned event of that attempt', async () => {
    const { db, pool } = database().handle;
    // Ours build on graphile-worker's schema, which migrateToLatest installs first.
    await runWorkerMigrations({ pgPool: pool });
    const migrator = createMigrator(db);
    const before = await migrator.migrateTo('0006_time_ordered_ids');
    expect(before.error).toBeUndefined();

    const decision = { winner: 'worker-2', score: 0.9, candidates: [{ agent: 'worker-2', outcome: 'won' }] };
    // Attempt 1 went to worker-1 and came back; attempt 2 went to worker-2 with `decision`.
    const { rows } = await sql<{ id: string }>`
      INSERT INTO dispatch_tasks (requester, title, scope, status, assignee, attempt, assigned_at, placement)
      VALUES ('r', 'placed twice', 'code', 'assigned', 'worker-2', 2, now(), ${JSON.stringify(decision)}::jsonb)
      RETURNING id`.execute(db);
    const id = rows[0]!.id;
    await sql`INSERT INTO dispatch_task_events (task_id, event, agent_id, attempt) VALUES
                (${id}, 'assigned', 'worker-1', 1), (${id}, 'timeout_retry', 'worker-1', 1), (${id}, 'assigned', 'worker-2', 2)`.execute(db);

    const after = await migrator.migrateToLatest();
    expect(after.error).toBeUndefined();

    const events = await sql<{ event: string; attempt: number; placement: unknown }>`
      SELECT event, attempt, placement FROM dispatch_task_events WHERE task_id = ${id} ORDER BY id`.execute(db);
    expect(events.rows).toEqual([
      { event: 'assigned', attempt: 1, placement: null },
      { event: 'timeout_retry', attempt: 1, placement: null },
      { event: 'assigned', attempt: 2, placement: decision },
    ]);
    const column = await sql`SELECT 1 FROM information_schema.columns WHERE table_name = 'dispatch_tasks' AND column_name = 'placement'`.execute(db);
    expect(column.rows).toEqual([]);
  });
});
