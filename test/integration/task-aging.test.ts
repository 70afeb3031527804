import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agingBoundMs } from '../../src/assignment/aging.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestDispatch, type TestDispatch } from '../helpers/dispatch.js';
import { apiClient, type ApiClient } from '../helpers/http.js';
import { createTask } from '../helpers/tasks.js';
import { waitFor } from '../helpers/wait.js';

/**
 * No starvation: one agent kept saturated by a stream of priority-1 tasks (a backlog always
 * waiting, each task completed the moment it is assigned), and one priority-5 task among them.
 * With assignment.aging_ms = 200 it must overtake every priority-1 task that became ready more
 * than 4 x 200 ms after it, and so be assigned while priority-1 work is still waiting.
 */

const AGING_MS = 200;
const AGENT = 'busy-bee';
const SCOPE = 'stream';
const BACKLOG = 10;

let database: TestDatabase;
let dispatch: TestDispatch;
let api: ApiClient;

beforeAll(async () => {
  database = await createTestDatabase();
  dispatch = await startTestDispatch(database.url, { assignment: { aging_ms: AGING_MS, tick_interval_ms: 3_600_000 } });
  api = apiClient(dispatch.baseUrl, 'planner');
});

afterAll(async () => {
  await dispatch?.stop();
  await database?.drop();
});

interface Row {
  id: string;
  priority: number;
  created_at: Date;
  assigned_at: Date | null;
}

async function streamTasks(): Promise<Row[]> {
  const { rows } = await sql<Row>`
    SELECT id, priority, created_at, (SELECT min(created_at) FROM dispatch_task_events e WHERE e.task_id = t.id AND e.event = 'assigned') AS assigned_at
      FROM dispatch_tasks t WHERE scope = ${SCOPE}`.execute(database.handle.db);
  return rows;
}

describe('aging', () => {
  it(`assigns a priority-5 task within ${agingBoundMs(5, AGING_MS)} ms of waiting plus the work already ahead, under a saturating priority-1 stream`, async () => {
    const agent = apiClient(dispatch.baseUrl, AGENT);
    for (let i = 0; i < BACKLOG; i++) await createTask(api, { scope: SCOPE, priority: 1, title: `p1 ${i}` });
    expect((await agent('PUT', `/api/v1/agents/${AGENT}`, { body: { capabilities: [SCOPE], status: 'ready', max_concurrent: 2 } })).status).toBeLessThan(300);

    let stop = false;
    let lowId: string | undefined;
    // The swarm: complete whatever the agent holds, and top the priority-1 backlog back up.
    const swarm = (async () => {
      let made = BACKLOG;
      while (!stop) {
        const held = (await agent('GET', `/api/v1/tasks?assignee=${AGENT}&status=assigned`)).body.tasks as { id: string }[];
        await Promise.all(held.filter((t) => t.id !== lowId).map((t) => agent('POST', `/api/v1/tasks/${t.id}/complete`, { body: { result: null } })));
        const pending = (await api('GET', `/api/v1/tasks?scope=${SCOPE}&status=pending&limit=500`)).body.tasks.length as number;
        for (let i = pending; i < BACKLOG + 1; i++) await createTask(api, { scope: SCOPE, priority: 1, title: `p1 ${made++}` });
      }
    })();
    try {
      await waitFor(async () => (await streamTasks()).filter((t) => t.assigned_at).length >= 2 * BACKLOG, { timeoutMs: 45_000, what: 'the stream flowing' });
      lowId = (await createTask(api, { scope: SCOPE, priority: 5, title: 'p5' })).id;
      await waitFor(async () => (await streamTasks()).find((t) => t.id === lowId)?.assigned_at ?? undefined, { timeoutMs: 45_000, intervalMs: 20, what: 'the priority-5 task assigned' });
    } finally {
      stop = true;
      await swarm;
    }

    const rows = await streamTasks();
    const low = rows.find((t) => t.id === lowId)!;
    const assignedAt = low.assigned_at!.getTime();
    const waited = assignedAt - low.created_at.getTime();
    const bound = agingBoundMs(5, AGING_MS);
    const p1 = rows.filter((t) => t.priority === 1);
    // Saturated: priority-1 work created before it was still waiting when it was assigned.
    const stillWaiting = p1.filter((t) => t.created_at.getTime() < assignedAt && (!t.assigned_at || t.assigned_at.getTime() > assignedAt));
    expect(stillWaiting.length, 'priority-1 tasks waiting when the priority-5 task was assigned').toBeGreaterThan(0);
    // Priority still counts: it waited its four levels...
    expect(waited).toBeGreaterThanOrEqual(bound - 50);
    // ...and then no priority-1 task that became ready more than `bound` after it went first.
    const overtook = p1.filter((t) => t.created_at.getTime() > low.created_at.getTime() + bound && t.assigned_at && t.assigned_at.getTime() < assignedAt);
    expect(overtook.map((t) => t.id)).toEqual([]);
    // Loose wall-clock bound for a loaded machine: the aging bound plus a backlog of a few tasks.
    expect(waited).toBeLessThan(bound + 10_000);

    const placement = await api('GET', `/api/v1/tasks/${lowId}/placement`, { admin: true });
    expect(placement.body.decision).toMatchObject({ effective_priority: 1 });
    console.log(`aging: priority-5 task assigned after ${waited} ms (bound ${bound} ms + the work ahead); ${stillWaiting.length} priority-1 tasks still waiting`);
  }, 120_000);
});
