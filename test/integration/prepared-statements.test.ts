import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type DatabaseHandle, type Db } from '../../src/db/database.js';
import { asOnlyPublisher, readOwedEvents } from '../../src/events/outbox.queries.js';
import { insertTask } from '../../src/tasks/task.queries.js';
import { createTestDatabase, databaseUrl, type TestDatabase } from '../helpers/database.js';
import { newTaskRow } from '../helpers/tasks.js';

/**
 * The hot statements are kept prepared on connections that go straight to PostgreSQL
 * (src/db/prepared.ts), and sent unnamed through a transaction pooler. Each pool here has one
 * connection, so pg_prepared_statements read through it is that connection's.
 */
let database: TestDatabase;
let preparing: DatabaseHandle;
let pooled: DatabaseHandle;

beforeAll(async () => {
  database = await createTestDatabase();
  preparing = openDatabase(databaseUrl(database.name), 1, 'prepared-test', {}, { prepare: true });
  pooled = openDatabase(databaseUrl(database.name), 1, 'pooled-test', {}, { prepare: false });
});
afterAll(async () => {
  await preparing?.close();
  await pooled?.close();
  await database?.drop();
});

interface PreparedStatement {
  name: string;
  generic_plans: number;
  custom_plans: number;
}

async function preparedOn(db: Db): Promise<PreparedStatement[]> {
  const { rows } = await sql<PreparedStatement>`
    SELECT name, generic_plans::int, custom_plans::int FROM pg_prepared_statements ORDER BY name`.execute(db);
  return rows;
}

describe('prepared statements', () => {
  it('keep a marked statement prepared on its connection, planned once for all after a few runs', async () => {
    for (let i = 0; i < 10; i++) expect(await insertTask(preparing.db, newTaskRow('prepared'))).toBeDefined();
    await sql`SELECT ${'unmarked'}::text AS statement`.execute(preparing.db);

    const statements = await preparedOn(preparing.db);
    expect(statements.map((s) => s.name)).toEqual([expect.stringMatching(/^dispatch_insert_tasks_[0-9a-f]{12}_0$/)]);
    // Parsed once; PostgreSQL's own choice (plan_cache_mode auto) then stops planning it anew.
    expect(statements[0]!.generic_plans + statements[0]!.custom_plans).toBe(10);
    expect(statements[0]!.generic_plans).toBeGreaterThan(0);
  });

  it('are not kept through a transaction pooler: every statement goes unnamed', async () => {
    for (let i = 0; i < 3; i++) expect(await insertTask(pooled.db, newTaskRow('pooled'))).toBeDefined();
    expect(await preparedOn(pooled.db)).toEqual([]);
  });

  it('survive a migration that changes the table they return whole', async () => {
    expect(await insertTask(preparing.db, newTaskRow('before'))).toBeDefined();
    await sql`ALTER TABLE dispatch_tasks ADD COLUMN added_by_a_later_migration integer`.execute(pooled.db);

    // Outside a transaction the statement is prepared again and run at once.
    const after = await insertTask(preparing.db, newTaskRow('after'));
    expect(after).toMatchObject({ scope: 'after', added_by_a_later_migration: null });

    // Inside one the transaction has failed; it works when its owner runs it again.
    await sql`ALTER TABLE dispatch_tasks ADD COLUMN added_by_another_migration integer`.execute(pooled.db);
    const inTransaction = () => preparing.db.transaction().execute((tx) => insertTask(tx, newTaskRow('in a transaction')));
    await expect(inTransaction()).rejects.toMatchObject({ code: '0A000' });
    expect(await inTransaction()).toMatchObject({ scope: 'in a transaction', added_by_another_migration: null });

    const names = (await preparedOn(preparing.db)).map((s) => s.name);
    expect(names.filter((n) => n.startsWith('dispatch_insert_tasks_'))).toHaveLength(3);
  });

  it('keep the outbox read looking up only the owed events after a history grew under a plan made on empty tables', async () => {
    // The publisher's first reads, on a fresh install: nothing owed, no events.
    for (let i = 0; i < 8; i++) await asOnlyPublisher(preparing.db, (tx) => readOwedEvents(tx, 100));
    // A history of 5,000 tasks and their events, all published but the last 10.
    await sql`INSERT INTO dispatch_tasks (requester, title, scope) SELECT 'planner', 'history', 'history' FROM generate_series(1, 5000)`.execute(pooled.db);
    await sql`INSERT INTO dispatch_task_events (task_id, event, payload) SELECT id, 'created', '{}' FROM dispatch_tasks WHERE scope = 'history'`.execute(pooled.db);
    await sql`DELETE FROM dispatch_event_outbox WHERE id < (SELECT max(id) - 9 FROM dispatch_event_outbox)`.execute(pooled.db);

    const read = await asOnlyPublisher(preparing.db, async (tx) => {
      const eventRows = async () =>
        (await sql<{ n: number }>`SELECT (coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0))::int AS n FROM pg_stat_xact_user_tables WHERE relname = 'dispatch_task_events'`.execute(tx)).rows[0]!.n;
      const before = await eventRows();
      const owed = await readOwedEvents(tx, 100);
      return { owed: owed.length, eventRows: (await eventRows()) - before };
    });
    expect(read?.owed).toBe(10);
    expect(read?.eventRows, 'event rows the read looked at').toBeLessThanOrEqual(20);
  });
});
