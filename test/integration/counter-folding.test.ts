import { sql } from 'kysely';
import { afterAll, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { CounterFolding } from '../../src/tasks/counter-folding.js';
import { createTestDatabase } from '../helpers/database.js';

/**
 * Counter folding runs on the replica that leads (the due-timer lease's holder) and on no other:
 * a replica that does not lead leaves an agent's releases and a scope's counter rows as they are,
 * and the one that leads folds them.
 */
const database = await createTestDatabase();
afterAll(() => database.drop());

it('folds only on the replica that leads', async () => {
  const db = database.handle.db;
  // A new agent row starts from the tasks its name holds (none): its count is set after.
  await sql`INSERT INTO dispatch_agents (name, capabilities, status) VALUES ('folding-agent', '{folds}', 'ready')`.execute(db);
  await sql`UPDATE dispatch_agents SET active_tasks = 3 WHERE name = 'folding-agent'`.execute(db);
  await sql`INSERT INTO dispatch_agent_releases (agent, released) VALUES ('folding-agent', 2)`.execute(db);
  await sql`INSERT INTO dispatch_scope_counts (scope, status, tasks) VALUES ('folds', 'pending', 1), ('folds', 'pending', 1), ('folds', 'pending', 1)`.execute(db);
  const state = async () => {
    const agent = await sql<{ active: number }>`SELECT active_tasks AS active FROM dispatch_agents WHERE name = 'folding-agent'`.execute(db);
    const counts = await sql<{ rows: number; tasks: number }>`SELECT count(*)::int AS rows, sum(tasks)::int AS tasks FROM dispatch_scope_counts WHERE scope = 'folds'`.execute(db);
    return { activeTasks: agent.rows[0]!.active, countRows: counts.rows[0]!.rows, pendingTasks: counts.rows[0]!.tasks };
  };

  let leads = false;
  const folding = new CounterFolding(db, 1_000, () => leads, createLogger({ level: 'silent' }));
  expect(await folding.runOnce()).toEqual({ scopeRows: 0, agents: 0 });
  expect(await state()).toEqual({ activeTasks: 3, countRows: 3, pendingTasks: 3 });

  leads = true;
  const folded = await folding.runOnce();
  expect(folded.agents).toBe(1);
  expect(folded.scopeRows).toBeGreaterThan(0);
  expect(await state()).toEqual({ activeTasks: 1, countRows: 1, pendingTasks: 3 });
});
