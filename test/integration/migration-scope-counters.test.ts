import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { runMigrations as runWorkerMigrations } from 'graphile-worker';
import { createMigrator } from '../../src/db/migrate.js';
import { useTestDatabase } from '../helpers/database.js';

const database = useTestDatabase({ empty: true });

describe('upgrading to 0008_scope_counters', () => {
  it('fills the counters from the tasks already there, and keeps them exact afterwards', async () => {
    const { db, pool } = database().handle;
    await runWorkerMigrations({ pgPool: pool });
    const migrator = createMigrator(db);
    expect((await migrator.migrateTo('0007_placement_in_audit_trail')).error).toBeUndefined();

    await sql`
      INSERT INTO dispatch_tasks (requester, title, scope, status, assignee, attempt, assigned_at, completed_at)
      SELECT 'r', 'old', 'scope-' || (n % 3), s.status,
             CASE WHEN s.status IN ('assigned', 'running') THEN 'w' END,
             CASE WHEN s.status = 'pending' THEN 0 ELSE 1 END,
             CASE WHEN s.status <> 'pending' THEN now() END,
             CASE WHEN s.status IN ('completed', 'failed', 'cancelled', 'timeout') THEN now() END
        FROM generate_series(1, 30) n
       CROSS JOIN unnest(ARRAY['pending', 'assigned', 'running', 'completed', 'failed', 'cancelled', 'timeout']) AS s(status)`.execute(db);

    expect((await migrator.migrateToLatest()).error).toBeUndefined();

    const mismatches = async () =>
      (
        await sql<{ scope: string; status: string; kept: number; counted: number }>`
          WITH counted AS (SELECT scope, status, count(*)::int AS n FROM dispatch_tasks GROUP BY 1, 2),
               kept AS (SELECT scope, status, sum(tasks)::int AS n FROM dispatch_scope_counts GROUP BY 1, 2
                        UNION ALL
                        SELECT scope, outcome, sum(observations)::int FROM dispatch_scope_observations
                         WHERE kind = 'finished' GROUP BY 1, 2)
          SELECT scope, status, coalesce(k.n, 0) AS kept, coalesce(c.n, 0) AS counted
            FROM counted c FULL JOIN kept k USING (scope, status)
           WHERE coalesce(k.n, 0) <> coalesce(c.n, 0)`.execute(db)
      ).rows;
    expect(await mismatches()).toEqual([]);
    const { rows } = await sql<{ n: number }>`SELECT sum(tasks)::int AS n FROM dispatch_scope_counts`.execute(db);
    expect(rows[0]!.n).toBe(90);

    // A DBA's bulk fix after the upgrade goes through the triggers like everything else.
    await sql`UPDATE dispatch_tasks SET status = 'cancelled', completed_at = now(), assignee = coalesce(assignee, 'w')
               WHERE status IN ('pending', 'running') AND scope = 'scope-1'`.execute(db);
    await sql`DELETE FROM dispatch_tasks WHERE status = 'assigned' AND scope = 'scope-2'`.execute(db);
    expect(await mismatches()).toEqual([]);
  });
});
