import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { assignDirectly, BROKER_NOTES, createTask, expectError, insertTasks } from '../helpers/tasks.js';
import { useTaskApi, assignedTask, unique } from '../helpers/task-api.js';

/**
 * Reading tasks: one task, the filtered and paged list, and the audit trail of each. Through real
 * HTTP on a real PostgreSQL.
 */
const { api, db } = await useTaskApi();

describe('GET /api/v1/tasks/:id', () => {
  it('returns the task', async () => {
    const task = await createTask(api, { title: 'read me' });
    const response = await api('GET', `/api/v1/tasks/${task.id}`, { agent: 'anyone-else' });
    expect(response.status).toBe(200);
    // updated_at moves when the assignment loop notes that nobody can take the task.
    const { updated_at: _read, ...read } = response.body;
    const { updated_at: _created, ...created } = task;
    expect(read).toEqual(created);
  });

  it('accepts the id in upper case', async () => {
    const task = await createTask(api);
    const response = await api('GET', `/api/v1/tasks/${task.id.toUpperCase()}`);
    expect(response.status).toBe(200);
    expect(response.body.id).toBe(task.id);
  });

  it.each(['not-a-uuid', '12345', `${randomUUID()}0`, "' OR 1=1 --"])('answers 400 for the malformed id %j', async (id) => {
    expectError(await api('GET', `/api/v1/tasks/${encodeURIComponent(id)}`), 400, 'validation_failed', 'id');
  });

  it('answers 404 for an unknown task', async () => {
    expectError(await api('GET', `/api/v1/tasks/${randomUUID()}`), 404, 'not_found');
  });
});

describe('GET /api/v1/tasks', () => {
  it('filters by status, requester, assignee, scope and parent_id', async () => {
    const requester = unique('lister');
    const scope = unique('scope');
    const parent = await createTask(api, { scope }, requester);
    const children = [await createTask(api, { scope, parent_id: parent.id }, requester), await createTask(api, { scope: 'other', parent_id: parent.id }, requester)];
    const worker = unique('worker');
    await assignDirectly(db, children[0].id, worker);
    const otherRequester = await createTask(api, { scope }, unique('stranger'));

    const ids = async (query: string) => {
      const response = await api('GET', `/api/v1/tasks?${query}`);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      return (response.body.tasks as { id: string }[]).map((t) => t.id).sort();
    };
    expect(await ids(`requester=${requester}`)).toEqual([parent.id, ...children.map((c) => c.id)].sort());
    expect(await ids(`scope=${scope}`)).toEqual([parent.id, children[0].id, otherRequester.id].sort());
    expect(await ids(`scope=${scope.toUpperCase()}`)).toEqual([parent.id, children[0].id, otherRequester.id].sort());
    expect(await ids(`parent_id=${parent.id}`)).toEqual(children.map((c) => c.id).sort());
    expect(await ids(`assignee=${worker}`)).toEqual([children[0].id]);
    expect(await ids(`requester=${requester}&status=assigned`)).toEqual([children[0].id]);
    expect(await ids(`requester=${requester}&status=pending`)).toEqual([parent.id, children[1].id].sort());
    expect(await ids(`requester=${requester}&status=completed`)).toEqual([]);
    expect(await ids(`requester=${requester}&scope=other&parent_id=${parent.id}`)).toEqual([children[1].id]);
  });

  it('returns 50 tasks by default, at most 500, newest first', async () => {
    const requester = unique('many');
    await insertTasks(db, 520, { requester });
    const byDefault = await api('GET', `/api/v1/tasks?requester=${requester}`);
    expect(byDefault.status).toBe(200);
    expect(byDefault.body.tasks).toHaveLength(50);
    expect(byDefault.body.next_cursor).toEqual(expect.any(String));
    const max = await api('GET', `/api/v1/tasks?requester=${requester}&limit=500`);
    expect(max.body.tasks).toHaveLength(500);
    const small = await api('GET', `/api/v1/tasks?requester=${requester}&limit=1`);
    expect(small.body.tasks).toHaveLength(1);
  });

  it.each([
    ['limit=501', 'query.limit'],
    ['limit=0', 'query.limit'],
    ['limit=-1', 'query.limit'],
    ['limit=ten', 'query.limit'],
    ['status=done', 'query.status'],
    ['parent_id=xyz', 'query.parent_id'],
    ['sort=asc', 'query.sort'],
  ])('answers 400 for %s', async (query, field) => {
    expectError(await api('GET', `/api/v1/tasks?${query}`), 400, 'validation_failed', field);
  });

  it('pages through every task exactly once, newest first, with next_cursor', async () => {
    const requester = unique('pager');
    // Tasks created one by one (distinct timestamps) and in bulk (one shared timestamp, so the
    // order falls to the id): a cursor must not skip or repeat either kind.
    for (let i = 0; i < 9; i++) await createTask(api, { title: `solo ${i}` }, requester);
    await insertTasks(db, 120, { requester });
    for (let i = 0; i < 8; i++) await createTask(api, { title: `late ${i}` }, requester);
    await insertTasks(db, 40, { requester });
    const expected = await db
      .selectFrom('dispatch_tasks')
      .select('id')
      .where('requester', '=', requester)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .execute();
    expect(expected).toHaveLength(177);

    const seen: string[] = [];
    const createdAts: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `requester=${requester}&limit=10${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await api('GET', `/api/v1/tasks?${query}`);
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      for (const task of page.body.tasks) {
        seen.push(task.id);
        createdAts.push(Date.parse(task.created_at));
      }
      cursor = page.body.next_cursor;
      pages += 1;
      expect(pages).toBeLessThan(30);
    } while (cursor);

    expect(pages).toBe(18);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expected.map((r) => r.id));
    expect(createdAts).toEqual([...createdAts].sort((a, b) => b - a));
  });

  it('ends with an empty page and no cursor when the last page was full', async () => {
    const requester = unique('exact');
    await insertTasks(db, 4, { requester });
    const first = await api('GET', `/api/v1/tasks?requester=${requester}&limit=4`);
    expect(first.body.tasks).toHaveLength(4);
    const rest = await api('GET', `/api/v1/tasks?requester=${requester}&limit=4&cursor=${first.body.next_cursor}`);
    expect(rest.status).toBe(200);
    expect(rest.body).toEqual({ tasks: [], next_cursor: null });
  });

  it.each([
    ['garbage', 'not-a-cursor'],
    ['base64 of non-JSON', Buffer.from('hello').toString('base64url')],
    ['a JSON cursor with a bad date', Buffer.from(JSON.stringify(['yesterday', randomUUID()])).toString('base64url')],
    ['a JSON cursor with a bad id', Buffer.from(JSON.stringify([new Date().toISOString(), 'x'])).toString('base64url')],
    ['a JSON object', Buffer.from('{}').toString('base64url')],
  ])('answers 400 for a bad cursor: %s', async (_case, cursor) => {
    expectError(await api('GET', `/api/v1/tasks?cursor=${encodeURIComponent(cursor)}`), 400, 'validation_failed', 'query.cursor');
  });
});

describe('GET /api/v1/tasks/:id/events', () => {
  it('returns the audit trail in order: one event per state change', async () => {
    const task = await createTask(api, { title: 'audited' });
    await assignDirectly(db, task.id, 'worker-audit');
    await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-audit', body: { step: 1 } });
    await api('POST', `/api/v1/tasks/${task.id}/progress`, { agent: 'worker-audit', body: { step: 2 } });
    // Refused calls leave no trace.
    await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'someone-else', body: {} });
    await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-audit', body: { attempt: 9 } });
    await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-audit', body: { result: { ok: true } } });
    await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-audit', body: { result: 'again' } });

    const response = await api('GET', `/api/v1/tasks/${task.id}/events`, { agent: 'an-auditor' });
    expect(response.status).toBe(200);
    const events = (response.body.events as Array<Record<string, any>>).filter((e) => !BROKER_NOTES.has(e.event));
    expect(events.map((e) => [e.event, e.agent_id, e.attempt])).toEqual([
      ['created', 'requester-1', 0],
      ['assigned', 'worker-audit', 1],
      ['progress', 'worker-audit', 1],
      ['progress', 'worker-audit', 1],
      ['completed', 'worker-audit', 1],
    ]);
    expect(events[0]!.payload).toMatchObject({ task_id: task.id, requester: 'requester-1', scope: 'testing' });
    expect(events[4]!.payload).toEqual({ task_id: task.id, result: { ok: true } });
    for (const event of events) {
      expect(event.task_id).toBe(task.id);
      expect(event.event_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(Date.parse(event.created_at)).not.toBeNaN();
    }
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });

  it('writes the event in the same transaction as the change: no event, no change', async () => {
    const task = await assignedTask(api, db, 'worker-atomic');
    await sql`
      CREATE FUNCTION test_refuse_completed_event() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.event = 'completed' THEN RAISE EXCEPTION 'event store refuses completed'; END IF;
        RETURN NEW;
      END $$`.execute(db);
    await sql`CREATE TRIGGER test_refuse_completed BEFORE INSERT ON dispatch_task_events
              FOR EACH ROW EXECUTE FUNCTION test_refuse_completed_event()`.execute(db);
    try {
      const response = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-atomic', body: { result: 1 } });
      expectError(response, 500, 'internal');
      const stored = await api('GET', `/api/v1/tasks/${task.id}`);
      expect(stored.body).toMatchObject({ status: 'assigned', result: null, completed_at: null });
    } finally {
      await sql`DROP TRIGGER test_refuse_completed ON dispatch_task_events`.execute(db);
      await sql`DROP FUNCTION test_refuse_completed_event()`.execute(db);
    }
    const retried = await api('POST', `/api/v1/tasks/${task.id}/complete`, { agent: 'worker-atomic', body: { result: 1 } });
    expect(retried.status).toBe(200);
  });

  it('answers 400 for a bad id and 404 for an unknown task', async () => {
    expectError(await api('GET', '/api/v1/tasks/bad/events'), 400, 'validation_failed', 'id');
    expectError(await api('GET', `/api/v1/tasks/${randomUUID()}/events`), 404, 'not_found');
  });
});
