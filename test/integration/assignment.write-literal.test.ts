import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { Assigner } from '../../src/assignment/assigner.js';
import { lastPlacement } from '../../src/assignment/assignment.queries.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { useTestDatabase } from '../helpers/database.js';
import { insertTasks } from '../helpers/tasks.js';

/**
 * The batch's write carries its decisions as one literal (it travels with the COMMIT, so it can
 * have no parameters): names that quote, escape or look like its quoting must come out as they went in.
 */

const database = useTestDatabase();

describe("the batch's write", () => {
  it('places on agents and scopes whose names hold quotes, backslashes and the dollar quote itself', async () => {
    const { db, pool } = database().handle;
    const nasty = [`it's`, `back\\slash`, `$decisions$`, `$decisions0$ and $decisions$`, `"double" \\' $$`];
    for (const [i, name] of nasty.entries()) {
      await sql`INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent) VALUES (${name}, ${[`scope ${name}`]}, 'ready', 1)`.execute(db);
      await insertTasks(db, 1, { scope: `scope ${name}`, title: `task ${i}` });
    }
    const assigner = new Assigner(db, { api: pool, direct: pool }, { batchSize: 50, defaultMaxConcurrent: 3 }, createLogger({ level: 'silent' }), createMetrics());
    expect(await assigner.assignBatch()).toEqual({ claimed: nasty.length, assigned: nasty.length });

    const { rows } = await sql<{ id: string; scope: string; assignee: string }>`
      SELECT id, scope, assignee FROM dispatch_tasks WHERE status = 'assigned' ORDER BY scope`.execute(db);
    expect(rows.map((r) => [r.scope, r.assignee])).toEqual([...nasty].sort((a, b) => (`scope ${a}` < `scope ${b}` ? -1 : 1)).map((n) => [`scope ${n}`, n]));
    for (const row of rows) {
      // The recorded decision names its winner as it was written.
      expect(JSON.stringify(await lastPlacement(db, row.id))).toContain(JSON.stringify(row.assignee).slice(1, -1));
    }
  });
});
