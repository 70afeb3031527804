import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { lockAgentsAndClaim, readAllAgents } from '../../src/assignment/assignment.queries.js';
import { ADVISORY_LOCK } from '../../src/db/contract.js';
import { useTestDatabase } from '../helpers/database.js';

/**
 * The batch's first statement sends the agents and the tasks it claimed as JSON (not a row each):
 * every field placement reads must come out as the plain read of the same rows gives it.
 */

const database = useTestDatabase();

describe('the agents an assignment batch reads', () => {
  it('are the agents as their rows hold them, the free ones locked and the others marked unlocked', async () => {
    const { db } = database().handle;
    const agents: Array<[string, string[], string, boolean, number | null, string | null, string | null]> = [
      // name, capabilities, status, drained, max_concurrent, last_assigned_at, avoid_until
      ['plain', ['alpha'], 'ready', false, null, null, null],
      [`quo"te's \\ ünï ☃`, ['a,b', '{braces}', `"q"`, 'ünï ☃', ''], 'sleeping', false, 4, '2026-12-05 10:00:00.123456+00', null],
      ['cooled', ['alpha'], 'busy', false, 2, '2026-12-05 09:59:59.5+00', '2020-01-01 00:00:00+00'],
      ['cooling', ['alpha'], 'ready', false, 2, null, '2999-01-01 00:00:00.987654+00'],
      ['drained', ['alpha'], 'ready', true, null, null, null],
      ['stopped', ['beta'], 'stopped', false, null, null, null],
      ['full', ['alpha', 'beta'], 'ready', false, 1, '2026-12-05 11:00:00+00', null],
    ];
    for (const [name, capabilities, status, drained, max, last, avoid] of agents) {
      await sql`INSERT INTO dispatch_agents (name, capabilities, status, drained, max_concurrent, last_assigned_at, avoid_until)
                VALUES (${name}, ${capabilities}, ${status}, ${drained}, ${max}, ${last}::timestamptz, ${avoid}::timestamptz)`.execute(db);
    }
    await sql`INSERT INTO dispatch_tasks (title, scope, requester, status, assignee, attempt, assigned_at)
              VALUES ('held', 'alpha', 'test', 'assigned', 'full', 1, now())`.execute(db);
    // Work waiting: with none the batch locks and reads no agent (migration 0028).
    await sql`INSERT INTO dispatch_tasks (title, scope, requester, priority, avoid_agent, created_at)
              VALUES ('waiting', 'alpha', 'test', 2, ${`quo"te's \\ ünï ☃`}, '2026-12-05 10:00:00.123456+00')`.execute(db);
    const { rows: waiting } = await sql`
      SELECT id, scope, priority, avoid_agent, coalesce(run_at, created_at) AS ready_at, rank FROM dispatch_tasks WHERE title = 'waiting'`.execute(db);

    const read = await readAllAgents(db, 3);
    expect(read.find((a) => a.name === 'full')?.activeTasks).toBe(1);
    expect(read.find((a) => a.name === 'cooled')?.lastAssignedAt?.toISOString()).toBe('2026-12-05T09:59:59.500Z');

    const locked = await db.transaction().execute(async (tx) => lockAgentsAndClaim(tx, 3, 10));
    expect(locked.active).toBe(true);
    expect(locked.free.map((a) => a.name)).toEqual(['cooled', 'plain', `quo"te's \\ ünï ☃`]);
    expect(locked.free).toEqual(read.filter((a) => locked.free.some((f) => f.name === a.name)));
    expect(locked.others.map((a) => a.name).sort()).toEqual(['cooling', 'drained', 'full', 'stopped']);
    expect(locked.others).toEqual(read.filter((a) => !locked.free.some((f) => f.name === a.name)).map((a) => ({ ...a, unlocked: true })));
    expect(locked.claim).toEqual({ tasks: waiting, controls: [] });
  });

  it('are none, and nothing is locked, when another assigner is active', async () => {
    const { db, pool } = database().handle;
    await sql`INSERT INTO dispatch_agents (name, capabilities, status) VALUES ('idle', ${['alpha']}, 'ready')`.execute(db);
    const holder = await pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK.assignerActive]);
      const locked = await db.transaction().execute(async (tx) => lockAgentsAndClaim(tx, 3, 10, { takeActive: true }));
      expect(locked).toEqual({ free: [], others: [], active: false, claim: { tasks: [], controls: [] } });
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      holder.release();
    }
  });
});
