import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { streamSSE } from 'hono/streaming';
import type { Child } from 'hono/jsx';
import { z } from 'zod';
import type { Db, TaskRow } from '../db/database.js';
import { agentIdSchema, type Caller } from '../domain/caller.js';
import { DispatchError, validationError } from '../domain/errors.js';
import { readJsonBody } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import { renderError } from '../http/errors.js';
import { callerForToken, type CallerIdentification } from '../http/middleware.js';
import type { Metrics } from '../observability/metrics.js';
import { setDrained } from '../agents/agent.queries.js';
import { explainPlacement } from '../assignment/placement.js';
import { changeScopeControls } from '../scopes/scope.queries.js';
import { listTaskEvents } from '../tasks/task.queries.js';
import { listTasksQuerySchema, parseTaskId, scopeSchema, uuidSchema } from '../tasks/task.schemas.js';
import { getVisibleTask, listTasks, updateTask } from '../tasks/task.service.js';
import { requeueTask, runBulkAction } from '../tasks/bulk.js';
import { ASSET_VERSION, DASHBOARD_CSS, DASHBOARD_JS } from './assets.js';
import type { LiveFeed } from './live-feed.js';
import { AgentsPage, BulkBar, Layout, OverviewPage, SignInPage, TaskFilters, TaskPage, TasksPage, type Viewer } from './pages.js';
import { dashboardCaller, dashboardSession, endSession, plainLoopback, sameOriginPosts, signedIn, startSession, wantsPage } from './session.js';

export interface DashboardDeps {
  db: Db;
  auth: CallerIdentification;
  feed: LiveFeed;
  metrics: Metrics;
  defaultMaxConcurrent: number;
  /** assignment.aging_ms, for the effective priority in the placement explanation. */
  agingMs: number;
}

/** Scripts, styles and frames only from here: a page can run nothing it did not ship. */
const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer Chrome sends "Origin: null" on our own form posts.
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

const withSecurityHeaders = (c: Context) => {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
};

const BULK_LIMIT = 500;
const bulkSchema = z.object({ action: z.enum(['cancel', 'requeue']), ids: z.array(uuidSchema).min(1).max(BULK_LIMIT) }).strict();
const drainSchema = z.object({ drained: z.boolean() }).strict();
const pauseSchema = z.object({ paused: z.boolean() }).strict();
const loginSchema = z.object({ token: z.string().trim().min(1).max(1000) });

const viewerOf = (c: Context<ApiEnv>): Viewer => {
  const caller = c.get('caller') as Caller | undefined;
  if (!caller) return { canAct: false, name: '', signedIn: false };
  return { canAct: caller.admin, name: signedIn(caller) ? caller.agent : 'header mode, this machine', signedIn: signedIn(caller) };
};

function requireAdmin(caller: Caller): void {
  if (!caller.admin) throw new DispatchError('forbidden', 'actions need an admin credential; this one only reads');
}

/** Query parameters the list understands, without the empty ones a GET form sends for "any". */
function taskFilters(c: Context) {
  const given = Object.fromEntries(Object.entries(c.req.query()).filter(([, value]) => value !== ''));
  const parsed = listTasksQuerySchema.safeParse(given);
  if (!parsed.success) throw validationError(parsed.error, 'query', 'query');
  return parsed.data;
}

/**
 * GET /ui/*: the operators' dashboard (server-rendered with Hono's JSX; see src/ui/assets.ts for
 * the client script). Pages read through the same domain functions as the REST routes; the
 * overview and agents render from the live feed's shared snapshot. Actions are admin-only POSTs.
 */
export function dashboardRoutes(deps: DashboardDeps) {
  const { db, feed } = deps;

  /** A whole page, or only its live region when the client script refreshes it. */
  const render = async (c: Context<ApiEnv>, title: string, body: Child, before?: Child) => {
    const { version } = await feed.snapshot();
    withSecurityHeaders(c);
    c.header('X-Dispatch-Version', version);
    if (c.req.header('x-dispatch-fragment') === 'live') return c.html(<>{body}</>);
    return c.html(
      '<!doctype html>' +
        (
          <Layout title={title} path={c.req.path} viewer={viewerOf(c)} version={version} before={before}>
            {body}
          </Layout>
        ).toString(),
    );
  };

  const session = dashboardSession(deps.auth);
  const app = new Hono<ApiEnv>();

  app.onError((error, c) => {
    if (!(error instanceof DispatchError)) throw error;
    if (wantsPage(c)) {
      const status = error.code === 'not_found' ? 404 : error.code === 'validation_failed' ? 400 : error.code === 'forbidden' ? 403 : 500;
      withSecurityHeaders(c);
      return c.html(
        '<!doctype html>' +
          (
            <Layout title="Not shown" path={c.req.path} viewer={viewerOf(c)} version="">
              <p class="error-text" role="alert">
                {error.message}
              </p>
            </Layout>
          ).toString(),
        status,
      );
    }
    return renderError(c, error);
  });

  app.get('/assets/:file', (c) => {
    const file = c.req.param('file');
    const asset = file === 'dashboard.js' ? DASHBOARD_JS : file === 'dashboard.css' ? DASHBOARD_CSS : undefined;
    if (asset === undefined) throw new DispatchError('not_found', `no asset ${file}`);
    c.header('Content-Type', file.endsWith('.js') ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8');
    c.header('X-Content-Type-Options', 'nosniff');
    // Pages ask for ?v=<content hash>, so a browser may keep it until the next release.
    c.header('Cache-Control', c.req.query('v') === ASSET_VERSION ? 'public, max-age=31536000, immutable' : 'no-cache');
    return c.body(asset);
  });

  const signInPage = (c: Context, status: 200 | 400 | 401 | 403, error?: string) => {
    withSecurityHeaders(c);
    return c.html('<!doctype html>' + (<SignInPage error={error} insecure={new URL(c.req.url).protocol === 'http:' && !plainLoopback(c)} />).toString(), status);
  };

  app.get('/login', (c) => signInPage(c, 200));
  app.post('/login', sameOriginPosts({ requireHeader: false }), bodyLimit({ maxSize: 8 * 1024 }), async (c) => {
    const form = loginSchema.safeParse(await c.req.parseBody());
    if (!form.success) return signInPage(c, 400, 'Enter a token.');
    try {
      dashboardCaller(await callerForToken(deps.auth, form.data.token, undefined));
    } catch (error) {
      if (!(error instanceof DispatchError)) throw error;
      return signInPage(c, error.code === 'forbidden' ? 403 : 401, error.code === 'forbidden' ? error.message : 'Not a valid token (unknown, revoked or expired).');
    }
    startSession(c, form.data.token);
    return c.redirect('/ui', 303);
  });
  app.post('/logout', sameOriginPosts({ requireHeader: false }), (c) => {
    endSession(c);
    return c.redirect('/ui/login', 303);
  });

  app.use('*', session, sameOriginPosts({ requireHeader: true }), bodyLimit({ maxSize: 64 * 1024 }));

  app.get('/', async (c) => {
    const snapshot = await feed.snapshot();
    return await render(c, 'Overview', <OverviewPage scopes={snapshot.scopes} viewer={viewerOf(c)} />);
  });

  app.get('/agents', async (c) => {
    const caller = c.get('caller');
    const [snapshot, assigned, running] = await Promise.all([
      feed.snapshot(),
      listTasks(db, { status: 'assigned', limit: 500 }, caller),
      listTasks(db, { status: 'running', limit: 500 }, caller),
    ]);
    const held = new Map<string, TaskRow[]>();
    for (const task of [...running.tasks, ...assigned.tasks]) {
      if (task.assignee) held.set(task.assignee, [...(held.get(task.assignee) ?? []), task]);
    }
    return await render(c, 'Agents', <AgentsPage agents={snapshot.agents} held={held} defaultMaxConcurrent={deps.defaultMaxConcurrent} viewer={viewerOf(c)} />);
  });

  app.get('/tasks', async (c) => {
    const query = taskFilters(c);
    const page = await listTasks(db, query, c.get('caller'));
    const next = page.nextCursor ? new URLSearchParams({ ...c.req.query(), cursor: page.nextCursor }) : null;
    const viewer = viewerOf(c);
    const before = (
      <>
        <TaskFilters query={query} />
        {viewer.canAct ? <BulkBar /> : null}
      </>
    );
    return await render(c, 'Tasks', <TasksPage tasks={page.tasks} nextHref={next ? `/ui/tasks?${next}` : null} viewer={viewer} />, before);
  });

  app.get('/tasks/:id', async (c) => {
    const task = await getVisibleTask(db, parseTaskId(c.req.param('id')), c.get('caller'));
    const [events, placement] = await Promise.all([listTaskEvents(db, task.id), explainPlacement(db, task, { defaultMaxConcurrent: deps.defaultMaxConcurrent, agingMs: deps.agingMs })]);
    return await render(
      c,
      `Task ${task.title || task.id}`,
      <TaskPage task={task} events={events} placement={placement as Record<string, unknown>} viewer={viewerOf(c)} />,
    );
  });

  // One stream per open page; every stream is fed by the replica's one snapshot a second.
  app.get('/events', (c) => {
    if (feed.closing) throw new DispatchError('unavailable', 'this replica is stopping');
    c.header('Cache-Control', 'no-store');
    return streamSSE(c, async (stream) => {
      const send = (version: string) => stream.writeSSE({ event: 'snapshot', data: JSON.stringify({ version }) }).catch(() => undefined);
      const ended = new Promise<void>((resolve) => {
        stream.onAbort(resolve);
        void feed.closed.then(resolve);
      });
      const unsubscribe = feed.subscribe((snapshot) => void send(snapshot.version));
      try {
        await send((await feed.snapshot()).version);
        await ended;
      } finally {
        unsubscribe();
      }
    });
  });

  const done = (message: string) => ({ message });

  app.post('/agents/:name/drain', async (c) => {
    const caller = c.get('caller');
    requireAdmin(caller);
    const name = agentIdSchema.safeParse(c.req.param('name'));
    if (!name.success) throw new DispatchError('validation_failed', 'invalid agent id', [{ field: 'name', message: 'printable ASCII without spaces' }]);
    const { drained } = await readJsonBody(c, drainSchema);
    await setDrained(db, name.data, drained, caller.actor);
    return c.json(done(drained ? `Agent ${name.data} drained: it gets no new tasks.` : `Agent ${name.data} undrained.`));
  });

  app.post('/scopes/:scope/pause', async (c) => {
    const caller = c.get('caller');
    requireAdmin(caller);
    const scope = scopeSchema.safeParse(c.req.param('scope'));
    if (!scope.success) throw new DispatchError('validation_failed', 'invalid scope', [{ field: 'scope', message: 'not a valid scope' }]);
    const { paused } = await readJsonBody(c, pauseSchema);
    await changeScopeControls(db, scope.data, { paused }, caller.actor);
    return c.json(done(paused ? `Scope ${scope.data} paused: no task of it is assigned until resumed.` : `Scope ${scope.data} resumed.`));
  });

  app.post('/tasks/:id/cancel', async (c) => {
    const caller = c.get('caller');
    requireAdmin(caller);
    const id = parseTaskId(c.req.param('id'));
    await updateTask(db, id, caller, { status: 'cancelled' });
    deps.metrics.taskTransitions.inc({ event: 'cancelled' });
    return c.json(done(`Task ${id} cancelled.`));
  });

  app.post('/tasks/:id/requeue', async (c) => {
    const caller = c.get('caller');
    requireAdmin(caller);
    const id = parseTaskId(c.req.param('id'));
    await requeueTask(db, caller, id);
    deps.metrics.taskTransitions.inc({ event: 'requeued' });
    return c.json(done(`Task ${id} requeued as a new attempt.`));
  });

  // The selected tasks, through the same batched domain action as POST /api/v1/tasks/cancel and /requeue.
  app.post('/tasks/bulk', async (c) => {
    const caller = c.get('caller');
    requireAdmin(caller);
    const { action, ids } = await readJsonBody(c, bulkSchema);
    const { changed } = await runBulkAction(db, caller, action, { filter: { ids }, limit: ids.length });
    deps.metrics.taskTransitions.inc({ event: action === 'cancel' ? 'cancelled' : 'requeued' }, changed);
    return c.json(
      done(
        action === 'cancel'
          ? `${changed} of ${ids.length} task(s) cancelled; the others had already finished.`
          : `${changed} of ${ids.length} task(s) requeued; the others were not failed or timed out.`,
      ),
    );
  });

  return app;
}
