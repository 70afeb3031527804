import type { Child } from 'hono/jsx';
import type { AgentRow, TaskEventRow, TaskRow } from '../db/database.js';
import type { ListTasksQuery } from '../tasks/task.schemas.js';
import { TASK_STATUSES } from '../db/columns.js';
import type { ScopeOverview } from './live-feed.js';
import { ASSET_VERSION } from './assets.js';
import { holdsOf } from './timeline.js';

/** What every page needs to know of the person looking at it. */
export interface Viewer {
  /** Admins get the action buttons; observers see the same pages without them. */
  canAct: boolean;
  /** Shown in the header: the credential's agent, or "header mode". */
  name: string;
  /** False in header mode on loopback, where there is nothing to sign out of. */
  signedIn: boolean;
}

const iso = (date: Date | null) => (date ? date.toISOString() : '');

/** A time the client script shows as "12 s ago" and keeps counting; the ISO text without script. */
function Ago({ at }: { at: Date | null }) {
  if (!at) return <span class="muted">never</span>;
  return (
    <time datetime={iso(at)} data-ago title={iso(at)}>
      {iso(at)}
    </time>
  );
}

/**
 * A button that acts only after the person confirms (the client script shows `confirm` in a
 * dialog, then POSTs `body` to `action` with the dashboard's CSRF header).
 */
function Action(props: { action: string; body?: unknown; confirm: string; label: string; danger?: boolean; id?: string }) {
  return (
    <button
      type="button"
      id={props.id ?? `act-${props.action.replace(/[^\w-]+/g, '-')}`}
      class={props.danger ? 'danger' : undefined}
      data-action={props.action}
      data-body={JSON.stringify(props.body ?? {})}
      data-confirm={props.confirm}
    >
      {props.label}
    </button>
  );
}

/**
 * An action that flips one state (a scope's pause, an agent's drain): the button offered is the
 * one that changes it, and turning it on, which holds work back, is marked as the dangerous one.
 */
function Switch(props: { action: string; field: string; on: boolean; turnOn: { label: string; confirm: string }; turnOff: { label: string; confirm: string } }) {
  const to = props.on ? props.turnOff : props.turnOn;
  return <Action action={props.action} body={{ [props.field]: !props.on }} confirm={to.confirm} label={to.label} danger={!props.on} />;
}

const NAV = [
  ['/ui', 'Overview'],
  ['/ui/agents', 'Agents'],
  ['/ui/tasks', 'Tasks'],
] as const;

/** The page frame: header, navigation, the live region the client script refreshes, the dialogs. */
export function Layout(props: { title: string; path: string; viewer: Viewer; version: string; children: Child; before?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{props.title} · Dispatch</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={`/ui/assets/dashboard.css?v=${ASSET_VERSION}`} />
        <script src={`/ui/assets/dashboard.js?v=${ASSET_VERSION}`} defer></script>
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header>
          <strong class="brand">Dispatch</strong>
          <nav aria-label="Pages">
            {NAV.map(([href, label]) => (
              <a href={href} aria-current={props.path === href ? 'page' : undefined}>
                {label}
              </a>
            ))}
          </nav>
          <span class="who">
            {props.viewer.name}
            {props.viewer.canAct ? ' (admin)' : ' (read only)'}
          </span>
          {props.viewer.signedIn ? (
            <form method="post" action="/ui/logout" class="inline">
              <button type="submit">Sign out</button>
            </form>
          ) : null}
          <span id="live-state" class="live-state" role="status" aria-live="polite">
            connecting…
          </span>
        </header>
        <main id="main" tabindex={-1}>
          <h1>{props.title}</h1>
          <p id="action-status" role="status" aria-live="polite" class="action-status"></p>
          {props.before}
          <div id="live" data-version={props.version}>
            {props.children}
          </div>
        </main>
        <dialog id="confirm" aria-labelledby="confirm-text">
          <form method="dialog">
            <p id="confirm-text"></p>
            <div class="buttons">
              <button value="cancel" type="submit" autofocus>
                Cancel
              </button>
              <button value="ok" type="submit" class="danger" id="confirm-ok">
                Confirm
              </button>
            </div>
          </form>
        </dialog>
      </body>
    </html>
  );
}

/** Created (solid) and finished (dashed) per minute as two polylines; gaps where no sample exists. */
export function RateChart({ scope, created, finished }: Pick<ScopeOverview, 'scope' | 'created' | 'finished'>) {
  const width = 240;
  const height = 48;
  const peak = Math.max(1, ...created.map((n) => n ?? 0), ...finished.map((n) => n ?? 0));
  const step = width / Math.max(1, created.length - 1);
  const line = (series: (number | null)[]) =>
    series
      .map((n, i) => (n === null ? null : `${(i * step).toFixed(1)},${(height - 2 - (n / peak) * (height - 4)).toFixed(1)}`))
      .filter((p) => p !== null)
      .join(' ');
  const total = (series: (number | null)[]) => series.reduce<number>((sum, n) => sum + (n ?? 0), 0);
  const label = `${scope}: ${total(created)} created and ${total(finished)} finished in the last hour; peak ${peak} per minute`;
  return (
    <svg class="chart" viewBox={`0 0 ${width} ${height}`} width={width} height={height} role="img" aria-label={label}>
      <title>{label}</title>
      <line x1="0" y1={height - 1} x2={width} y2={height - 1} class="axis" />
      <polyline points={line(created)} class="created" />
      <polyline points={line(finished)} class="finished" />
    </svg>
  );
}

function Limits({ scope }: { scope: ScopeOverview }) {
  const limits = [
    scope.max_running === null ? null : `at most ${scope.max_running} running`,
    scope.max_starts_per_minute === null ? null : `${scope.starts_last_minute ?? 0} of ${scope.max_starts_per_minute} starts a minute`,
  ].filter((text) => text !== null);
  if (limits.length === 0) return <span class="muted">none</span>;
  return <>{limits.join('; ')}</>;
}

export function OverviewPage({ scopes, viewer }: { scopes: ScopeOverview[]; viewer: Viewer }) {
  if (scopes.length === 0) return <p class="empty">No tasks yet: the scopes appear here once tasks are created.</p>;
  return (
    <>
      <p class="legend">
        Chart: tasks <span class="key created">created</span> and <span class="key finished">finished</span> per minute over the last hour (since this
        replica started).
      </p>
      <div class="table-wrap">
        <table id="scopes">
          <caption class="sr-only">Queues by scope</caption>
          <ColumnHeads columns={['Scope', 'Pending', 'Assigned', 'Running', 'Oldest pending', 'Last hour', 'State', 'Limits', viewer.canAct && 'Actions']} />
          <tbody>
            {scopes.map((s) => (
              <tr data-scope={s.scope}>
                <th scope="row">
                  <a href={`/ui/tasks?scope=${encodeURIComponent(s.scope)}`}>{s.scope}</a>
                </th>
                <td data-label="Pending" data-count="pending">
                  {s.depth.pending}
                </td>
                <td data-label="Assigned" data-count="assigned">
                  {s.depth.assigned}
                </td>
                <td data-label="Running" data-count="running">
                  {s.depth.running}
                </td>
                <td data-label="Oldest pending">
                  <Ago at={s.oldestPendingSince} />
                </td>
                <td data-label="Last hour">
                  <RateChart scope={s.scope} created={s.created} finished={s.finished} />
                </td>
                <td data-label="State" data-state>
                  {s.paused ? <span class="badge warn">paused</span> : <span class="badge ok">running</span>}
                  {s.held_because && !s.paused ? <div class="muted">{s.held_because}</div> : null}
                </td>
                <td data-label="Limits">
                  <Limits scope={s} />
                </td>
                {viewer.canAct ? (
                  <td data-label="Actions">
                    <Switch
                      action={`/ui/scopes/${encodeURIComponent(s.scope)}/pause`}
                      field="paused"
                      on={s.paused}
                      turnOn={{ label: `Pause ${s.scope}`, confirm: `Pause scope ${s.scope}? New tasks are still accepted but none is assigned until it is resumed.` }}
                      turnOff={{ label: `Resume ${s.scope}`, confirm: `Resume scope ${s.scope}? Its pending tasks are assigned again at once, on every replica.` }}
                    />
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function TaskLink({ task }: { task: Pick<TaskRow, 'id' | 'title'> }) {
  return (
    <a href={`/ui/tasks/${task.id}`} title={task.id}>
      {task.title || task.id.slice(0, 8)}
    </a>
  );
}

export function AgentsPage(props: { agents: AgentRow[]; held: Map<string, TaskRow[]>; defaultMaxConcurrent: number; viewer: Viewer }) {
  if (props.agents.length === 0) return <p class="empty">No agent has registered yet.</p>;
  return (
    <div class="table-wrap">
      <table id="agents">
        <caption class="sr-only">Agents</caption>
        <ColumnHeads columns={['Agent', 'Status', 'Load', 'Drained', 'Last seen', 'Capabilities', 'Holds', props.viewer.canAct && 'Actions']} />
        <tbody>
          {props.agents.map((agent) => {
            const limit = agent.max_concurrent ?? props.defaultMaxConcurrent;
            const held = props.held.get(agent.name) ?? [];
            return (
              <tr data-agent={agent.name}>
                <th scope="row">{agent.name}</th>
                <td data-label="Status">
                  <span class={`badge ${agent.status === 'ready' || agent.status === 'busy' ? 'ok' : 'warn'}`}>{agent.status}</span>
                </td>
                <td data-label="Load">
                  <meter min={0} max={limit} value={agent.active_tasks} aria-label={`${agent.name} load`}></meter> {agent.active_tasks} / {limit}
                </td>
                <td data-label="Drained" data-drained={String(agent.drained)}>
                  {agent.drained ? <span class="badge warn">drained</span> : 'no'}
                </td>
                <td data-label="Last seen">
                  <Ago at={agent.last_seen_at} />
                </td>
                <td data-label="Capabilities">{agent.capabilities.join(', ')}</td>
                <td data-label="Holds">
                  {held.length === 0 ? (
                    <span class="muted">nothing</span>
                  ) : (
                    <ul class="plain">
                      {held.map((task) => (
                        <li>
                          <TaskLink task={task} /> <span class="muted">{task.status}</span>
                        </li>
                      ))}
                    </ul>
                  )}
                </td>
                {props.viewer.canAct ? (
                  <td data-label="Actions">
                    <Switch
                      action={`/ui/agents/${encodeURIComponent(agent.name)}/drain`}
                      field="drained"
                      on={agent.drained}
                      turnOn={{ label: `Drain ${agent.name}`, confirm: `Drain ${agent.name}? It keeps the tasks it holds but gets no new ones.` }}
                      turnOff={{ label: `Undrain ${agent.name}`, confirm: `Undrain ${agent.name}? It is offered new tasks again.` }}
                    />
                  </td>
                ) : null}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** The filter form of the task list (outside the live region, so typing is never interrupted). */
export function TaskFilters({ query }: { query: Partial<ListTasksQuery> }) {
  const field = (name: 'scope' | 'requester' | 'assignee', label: string) => (
    <label>
      {label}
      <input name={name} value={query[name] ?? ''} autocomplete="off" />
    </label>
  );
  return (
    <form method="get" action="/ui/tasks" class="filters" role="search">
      <label>
        Status
        <select name="status">
          <option value="">any</option>
          {TASK_STATUSES.map((status) => (
            <option value={status} selected={query.status === status}>
              {status}
            </option>
          ))}
        </select>
      </label>
      {field('scope', 'Scope')}
      {field('requester', 'Requester')}
      {field('assignee', 'Assignee')}
      <label>
        Per page
        <input name="limit" type="number" min={1} max={500} value={String(query.limit ?? 50)} />
      </label>
      <button type="submit">Filter</button>
    </form>
  );
}

/** Bulk actions over the ticked tasks (ids collected by the client script). */
export function BulkBar() {
  return (
    <div class="bulk" role="group" aria-label="Bulk actions on the selected tasks">
      <button type="button" data-bulk="cancel" class="danger">
        Cancel selected
      </button>
      <button type="button" data-bulk="requeue">
        Requeue selected
      </button>
    </div>
  );
}

const OPEN = new Set(['pending', 'assigned', 'running']);
const REQUEUEABLE = new Set(['failed', 'timeout']);

export function TasksPage(props: { tasks: TaskRow[]; nextHref: string | null; viewer: Viewer }) {
  return (
    <>
      {props.tasks.length === 0 ? (
        <p class="empty">No task matches.</p>
      ) : (
        <div class="table-wrap">
          <table id="tasks">
            <caption class="sr-only">Tasks, newest first</caption>
            <ColumnHeads columns={[props.viewer.canAct && <span class="sr-only">Select</span>, 'Task', 'Scope', 'Status', 'Assignee', 'Requester', 'Priority', 'Created']} />
            <tbody>
              {props.tasks.map((task) => (
                <tr data-task={task.id}>
                  {props.viewer.canAct ? (
                    <td>
                      <input type="checkbox" name="ids" value={task.id} aria-label={`Select ${task.title || task.id}`} />
                    </td>
                  ) : null}
                  <td data-label="Task">
                    <TaskLink task={task} />
                  </td>
                  <td data-label="Scope">{task.scope}</td>
                  <td data-label="Status">
                    <span class={`status ${task.status}`}>{task.status}</span>
                  </td>
                  <td data-label="Assignee">{task.assignee ?? <span class="muted">none</span>}</td>
                  <td data-label="Requester">{task.requester}</td>
                  <td data-label="Priority">{task.priority}</td>
                  <td data-label="Created">
                    <Ago at={task.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {props.nextHref ? (
        <p>
          <a href={props.nextHref} rel="next">
            Next page →
          </a>
        </p>
      ) : null}
    </>
  );
}

function Json({ value }: { value: unknown }) {
  if (value === null || value === undefined) return <span class="muted">none</span>;
  return <pre>{JSON.stringify(value, null, 2)}</pre>;
}

interface CandidateLike {
  agent: string;
  score: number;
  status: string;
  active_tasks: number;
  max_concurrent: number;
  outcome: string;
}

function Candidates({ candidates, caption }: { candidates: CandidateLike[]; caption: string }) {
  if (candidates.length === 0) return <p class="muted">No capable agent.</p>;
  return (
    <div class="table-wrap">
      <table class="candidates">
        <caption>{caption}</caption>
        <ColumnHeads columns={['Agent', 'Outcome', 'Score', 'Status', 'Load']} />
        <tbody>
          {candidates.map((c) => (
            <tr>
              <th scope="row">{c.agent}</th>
              <td data-label="Outcome">{c.outcome.replaceAll('_', ' ')}</td>
              <td data-label="Score">{Number(c.score).toFixed(3)}</td>
              <td data-label="Status">{c.status}</td>
              <td data-label="Load">
                {c.active_tasks} / {c.max_concurrent}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const candidatesOf = (decision: unknown): CandidateLike[] | null => {
  const list = (decision as { candidates?: unknown } | null)?.candidates;
  return Array.isArray(list) ? (list as CandidateLike[]) : null;
};

/** The placement explanation of src/assignment/placement.ts, as a person reads it. */
function Placement({ placement }: { placement: Record<string, unknown> }) {
  const waiting = placement.waiting_because as string[] | undefined;
  const live = placement.candidates as CandidateLike[] | undefined;
  const recorded = candidatesOf(placement.decision ?? placement.last_decision);
  return (
    <section aria-labelledby="placement-h" id="placement">
      <h2 id="placement-h">Placement</h2>
      {waiting ? (
        <>
          <p>Waiting because:</p>
          <ul>
            {waiting.map((reason) => (
              <li>{reason}</li>
            ))}
          </ul>
          {live ? <Candidates candidates={live} caption="If it were placed now" /> : null}
          {typeof placement.without_capability === 'number' && placement.without_capability > 0 ? (
            <p class="muted">{placement.without_capability} agents lack the capability.</p>
          ) : null}
        </>
      ) : null}
      {recorded ? (
        <Candidates candidates={recorded} caption={waiting ? 'The last placement' : `Placed on ${String(placement.assignee ?? '')}: the decision as recorded`} />
      ) : waiting ? null : (
        <p class="muted">Never placed.</p>
      )}
    </section>
  );
}

export function TaskPage(props: { task: TaskRow; events: TaskEventRow[]; placement: Record<string, unknown>; viewer: Viewer }) {
  const { task } = props;
  const holds = holdsOf(props.events);
  return (
    <>
      <dl class="facts" id="task-facts">
        <dt>Status</dt>
        <dd>
          <span class={`status ${task.status}`} data-status>
            {task.status}
          </span>
        </dd>
        <dt>Scope</dt>
        <dd>{task.scope}</dd>
        <dt>Assignee</dt>
        <dd>{task.assignee ?? <span class="muted">none</span>}</dd>
        <dt>Requester</dt>
        <dd>{task.requester}</dd>
        <dt>Attempt</dt>
        <dd>
          {task.attempt} (retries {task.retry_count} of {task.max_retries})
        </dd>
        <dt>Priority</dt>
        <dd>{task.priority}</dd>
        <dt>Created</dt>
        <dd>
          <Ago at={task.created_at} />
        </dd>
        <dt>Id</dt>
        <dd>
          <code>{task.id}</code>
        </dd>
      </dl>
      {props.viewer.canAct ? (
        <p class="actions">
          {OPEN.has(task.status) ? <Action action={`/ui/tasks/${task.id}/cancel`} confirm={`Cancel task ${task.title || task.id}?`} label="Cancel task" danger /> : null}
          {REQUEUEABLE.has(task.status) ? (
            <Action action={`/ui/tasks/${task.id}/requeue`} confirm={`Requeue task ${task.title || task.id} as a new attempt with a fresh retry budget?`} label="Requeue task" />
          ) : null}
        </p>
      ) : null}
      <Placement placement={props.placement} />
      <section aria-labelledby="holds-h">
        <h2 id="holds-h">Attempts</h2>
        {holds.length === 0 ? (
          <p class="muted">No agent has held it yet.</p>
        ) : (
          <ol class="plain" id="holds">
            {holds.map((hold) => (
              <li>
                Attempt {hold.attempt ?? '?'}: <strong>{hold.agent}</strong> from <Ago at={hold.from} />{' '}
                {hold.until ? (
                  <>
                    until <Ago at={hold.until} /> ({hold.ended})
                  </>
                ) : (
                  'until now'
                )}
              </li>
            ))}
          </ol>
        )}
      </section>
      <section aria-labelledby="timeline-h">
        <h2 id="timeline-h">Timeline</h2>
        <div class="table-wrap">
          <table id="timeline">
            <caption class="sr-only">Audit events, oldest first</caption>
            <ColumnHeads columns={['When', 'Event', 'Agent', 'Attempt', 'Details']} />
            <tbody>
              {props.events.map((event) => (
                <tr>
                  <td data-label="When">
                    <Ago at={event.created_at} />
                  </td>
                  <th scope="row" data-label="Event">
                    {event.event}
                  </th>
                  <td data-label="Agent">{event.agent_id ?? ''}</td>
                  <td data-label="Attempt">{event.attempt ?? ''}</td>
                  <td data-label="Details">
                    <code class="wrap">{JSON.stringify(event.payload)}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="context-h">
        <h2 id="context-h">Context</h2>
        <Json value={task.context} />
      </section>
      <section aria-labelledby="result-h">
        <h2 id="result-h">Result</h2>
        {task.error ? <p class="error-text">Error: {task.error}</p> : null}
        <Json value={task.result} />
      </section>
    </>
  );
}

/** The sign-in form: a credential's token (observer or admin), or the admin token. */
export function SignInPage({ error, insecure }: { error?: string; insecure: boolean }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Sign in · Dispatch</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href={`/ui/assets/dashboard.css?v=${ASSET_VERSION}`} />
      </head>
      <body>
        <main id="main" class="signin">
          <h1>Dispatch</h1>
          <form method="post" action="/ui/login">
            <label for="token">Token (an observer or admin credential)</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required autofocus />
            {error ? (
              <p class="error-text" role="alert" id="signin-error">
                {error}
              </p>
            ) : null}
            <button type="submit">Sign in</button>
          </form>
          {insecure ? (
            <p class="muted">
              This address is not loopback and the request came over plain HTTP: the browser keeps the session cookie only over HTTPS. Put Dispatch behind a
              TLS-terminating proxy to use the dashboard from another machine.
            </p>
          ) : null}
        </main>
      </body>
    </html>
  );
}

/** A table's header row; a false column (an action column the viewer may not use) is left out. */
function ColumnHeads({ columns }: { columns: Array<Child | false> }) {
  return (
    <thead>
      <tr>
        {columns.filter((column) => column !== false).map((column) => (
          <th scope="col">{column}</th>
        ))}
      </tr>
    </thead>
  );
}
