import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { Assigner } from '../../src/assignment/assigner.js';
import { ADVISORY_LOCK } from '../../src/db/contract.js';
import { openDatabase } from '../../src/db/database.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient } from '../helpers/http.js';
import { parseExposition } from '../helpers/metrics-text.js';
import { insertTasks } from '../helpers/tasks.js';
import { assignWakeupsDuring } from '../helpers/wakeups.js';
import { waitFor } from '../helpers/wait.js';

/**
 * How new work reaches an assigner (migrations 0002 and 0019): a writer that finds no assigner
 * draining sends NOTIFY dispatch_assign at its commit, and every replica hearing it drains; a
 * writer that finds one draining sends nothing (that assigner's last pass sees its task).
 */

let database: TestDatabase;
const sessions: pg.Client[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.end().catch(() => {})));
  await database?.drop();
});

async function session(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  sessions.push(client);
  return client;
}

const wakeupsDuring = (write: () => Promise<unknown>) => assignWakeupsDuring(database.url, database.handle.db, write);

describe('waking the assigners', () => {
  it('a statement writing new work sends one NOTIFY dispatch_assign at its commit when no assigner drains', async () => {
    expect(await wakeupsDuring(() => insertTasks(database.handle.db, 3, { scope: 'wake-one' }))).toEqual(['']);
  });

  it('sends none while an assigner drains (it holds the active lock)', async () => {
    const assigner = await session();
    await assigner.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK.assignerActive]);
    try {
      expect(await wakeupsDuring(() => insertTasks(database.handle.db, 3, { scope: 'wake-none' }))).toEqual([]);
    } finally {
      await assigner.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK.assignerActive]);
    }
  });

  it("a task leaving a full agent wakes them when work for that agent waits, and only then (the release's trigger, migration 0022)", async () => {
    const { db } = database.handle;
    await sql`INSERT INTO dispatch_agents (name, capabilities, status, max_concurrent) VALUES ('wake-freer', '{wake-free}', 'ready', 1)`.execute(db);
    const [held, second] = await insertTasks(db, 2, { scope: 'wake-free', status: 'assigned', assignee: 'wake-freer' });
    const finish = (id: string) => sql`UPDATE dispatch_tasks SET status = 'completed', completed_at = now() WHERE id = ${id}`.execute(db);
    // Nothing waits for it: no wake-up.
    expect(await wakeupsDuring(() => finish(held!))).toEqual([]);
    await insertTasks(db, 1, { scope: 'wake-free' });
    expect(await wakeupsDuring(() => finish(second!))).toEqual(['']);
  });

  it('leaves ACTIVE free when the batch that took it fails (a session lock outlives the rollback)', async () => {
    await sql`INSERT INTO dispatch_agents (name, capabilities, status) VALUES ('fails-once', '{fail-once}', 'ready')`.execute(database.handle.db);
    await insertTasks(database.handle.db, 1, { scope: 'fail-once' });
    const handle = openDatabase(database.url, 2, 'failing-assigner');
    // The write, the statement after the one that takes ACTIVE, fails once.
    let failed = false;
    const pool = {
      async connect() {
        const client = await handle.pool.connect();
        return {
          query: (text: string, values?: unknown[]) => {
            if (!failed && /dispatch_apply_assignments\(/.test(text)) {
              failed = true;
              return Promise.reject(new Error('write failed'));
            }
            return client.query(text, values);
          },
          release: (error?: Error | boolean) => client.release(error),
        };
      },
    } as unknown as pg.Pool;
    try {
      const assigner = new Assigner(handle.db, { api: handle.pool, direct: pool }, { batchSize: 10, defaultMaxConcurrent: 3 }, createLogger({ level: 'silent' }), createMetrics());
      await expect(assigner.drain(() => false)).rejects.toThrow('write failed');
      const other = await session();
      expect((await other.query('SELECT pg_try_advisory_lock($1) AS ok', [ADVISORY_LOCK.assignerActive])).rows[0].ok).toBe(true);
      await other.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK.assignerActive]);
    } finally {
      await handle.close();
    }
  });

  describe('a replica whose tick is an hour away', () => {
    let dispatch: TestDispatch;
    beforeAll(async () => {
      dispatch = await startTestDispatch(database.url, { assignment: { tick_interval_ms: 3_600_000 } });
    });
    afterAll(async () => {
      await dispatch?.stop();
    });

    it('assigns a new task within moments: it drains on the notification', async () => {
      const api = apiClient(dispatch.baseUrl);
      expect((await api('PUT', '/api/v1/agents/waker', { agent: 'waker', body: { capabilities: ['wake-up'] } })).status).toBe(200);
      for (let i = 0; i < 3; i++) {
        const created = await api('POST', '/api/v1/tasks', { body: { title: `wake ${i}`, scope: 'wake-up' } });
        expect(created.status).toBe(201);
        const task = await waitFor(
          async () => {
            const t = (await api('GET', `/api/v1/tasks/${created.body.id}`)).body;
            return t.status === 'assigned' ? t : undefined;
          },
          { what: 'assignment', timeoutMs: 3_000 },
        );
        expect(task.assignee).toBe('waker');
      }
    });

    it("shows on /metrics where its batches' time went, step by step, adding up to the batches", async () => {
      const samples = parseExposition(await (await fetch(`${dispatch.opsUrl}/metrics`)).text());
      const value = (name: string, step?: string) =>
        samples.filter((s) => s.name === name && (step === undefined || s.labels.step === step)).reduce((sum, s) => sum + s.value, 0);
      const steps = ['agents', 'claim', 'place', 'write', 'commit'];
      for (const step of steps) expect(value('dispatch_assignment_batch_step_seconds_count', step), step).toBeGreaterThanOrEqual(1);
      // Every active batch is timed whole and step by step: the steps cover the batch.
      const batches = value('dispatch_assignment_batch_seconds_sum');
      const stepped = value('dispatch_assignment_batch_step_seconds_sum');
      expect(stepped).toBeLessThanOrEqual(batches);
      expect(stepped).toBeGreaterThan(batches * 0.9);
    });

    /** Assignment batches this replica has run (dispatch_assignment_batch_duration_seconds_count). */
    async function batchesRun(): Promise<number> {
      const { values } = await dispatch.dispatch.metrics.assignmentBatches.get();
      return values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    }

    it('leaves the queue to the active assigner: its first batch tries ACTIVE, and finds it taken', async () => {
      const { assignment } = dispatch.dispatch;
      const api = apiClient(dispatch.baseUrl);
      expect((await api('PUT', '/api/v1/agents/second-in-line', { agent: 'second-in-line', body: { capabilities: ['wake-taken'] } })).status).toBe(200);
      await assignment.assigner.whenIdle();
      const other = await session();
      await other.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK.assignerActive]);
      const [id] = await insertTasks(database.handle.db, 1, { scope: 'wake-taken' });
      const before = await batchesRun();
      try {
        await assignment.pass();
        expect(await batchesRun()).toBe(before);
        expect((await database.handle.db.selectFrom('dispatch_tasks').select('status').where('id', '=', id!).executeTakeFirstOrThrow()).status).toBe('pending');
      } finally {
        await other.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK.assignerActive]);
      }
      await assignment.pass();
      expect((await database.handle.db.selectFrom('dispatch_tasks').select(['status', 'assignee']).where('id', '=', id!).executeTakeFirstOrThrow())).toEqual({ status: 'assigned', assignee: 'second-in-line' });
    });

    it('runs one pass for wake-ups that came before it looked at the queue, and another for one after', async () => {
      const { assignment } = dispatch.dispatch;
      await assignment.assigner.whenIdle();
      const before = await batchesRun();
      // A pass with nothing to assign is two batches: one as the active assigner, one after the barrier.
      await Promise.all([assignment.pass(), assignment.pass(), assignment.pass()]);
      expect(await batchesRun()).toBe(before + 2);
      await assignment.pass();
      expect(await batchesRun()).toBe(before + 4);
    });
  });
});
