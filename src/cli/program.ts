import { Command, InvalidArgumentError, Option } from 'commander';
import type { Agent, Credential, DispatchClient, ListTasksQuery, Task, TaskEvent } from '../client/index.js';
import { clientFrom } from './connection.js';
import { record, table } from './table.js';
import { tailAgent, tailTask } from './tail.js';

/** What every command gets: the client, and how to print for people or for scripts. */
export interface CommandContext {
  client: DispatchClient;
  json: boolean;
  /** Prints `data` as JSON with --json, else what `human` makes of it. */
  print<T>(data: T, human: (data: T) => string): void;
}

// `never` parameters: any command's own argument list fits; commander supplies them.
type Handler = (ctx: CommandContext, ...args: never[]) => Promise<void>;

/** A command's action with the connection and output options of the whole program resolved. */
function run(handler: Handler) {
  return async (...args: unknown[]) => {
    const command = args.at(-1) as Command;
    const options = command.optsWithGlobals<{ url?: string; token?: string; as?: string; json?: boolean }>();
    const json = options.json ?? false;
    const ctx: CommandContext = {
      client: clientFrom({ url: options.url, token: options.token, agent: options.as }),
      json,
      print: (data, human) => console.log(json ? JSON.stringify(data, null, 2) : human(data)),
    };
    await (handler as (ctx: CommandContext, ...rest: unknown[]) => Promise<void>)(ctx, ...args.slice(0, -1));
  };
}

const integer = (value: string): number => {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError('not a whole number');
  return Number(value);
};
const jsonArgument = (value: string): unknown => {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('not valid JSON');
  }
};
const list = (value: string): string[] => value.split(',').map((s) => s.trim()).filter(Boolean);

const since = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : null);

export const taskColumns = {
  id: (t: Task) => t.id,
  status: (t: Task) => t.status,
  pri: (t: Task) => t.priority,
  scope: (t: Task) => t.scope,
  assignee: (t: Task) => t.assignee,
  attempt: (t: Task) => t.attempt,
  created: (t: Task) => since(t.created_at),
  title: (t: Task) => t.title,
};
const eventColumns = {
  id: (e: TaskEvent) => e.id,
  at: (e: TaskEvent) => since(e.created_at),
  event: (e: TaskEvent) => e.event,
  agent: (e: TaskEvent) => e.agent_id,
  attempt: (e: TaskEvent) => e.attempt,
  payload: (e: TaskEvent) => e.payload,
};
const agentColumns = {
  name: (a: Agent) => a.name,
  status: (a: Agent) => a.status,
  load: (a: Agent) => `${a.active_tasks}/${a.max_concurrent}`,
  drained: (a: Agent) => (a.drained ? `yes (${a.drained_by})` : 'no'),
  source: (a: Agent) => a.source,
  'last seen': (a: Agent) => since(a.last_seen_at),
  capabilities: (a: Agent) => a.capabilities,
};
const credentialColumns = {
  id: (c: Credential) => c.id,
  role: (c: Credential) => c.role,
  scopes: (c: Credential) => (c.scopes.length > 0 ? c.scopes : 'any'),
  created: (c: Credential) => since(c.created_at),
  expires: (c: Credential) => since(c.expires_at),
  revoked: (c: Credential) => since(c.revoked_at),
  'last used': (c: Credential) => since(c.last_used_at),
};

function tasksCommand(): Command {
  const tasks = new Command('tasks').description('list, read, create and cancel tasks');
  tasks
    .command('ls')
    .description('list tasks, newest first')
    .option('--status <status>', 'pending, assigned, running, completed, failed, cancelled or timeout')
    .option('--scope <scope>')
    .option('--assignee <agent>')
    .option('--requester <agent>')
    .option('--parent <task-id>', 'subtasks of this task')
    .option('--limit <n>', 'tasks per page (at most 500)', integer, 50)
    .option('--cursor <cursor>', 'the page after this one (next_cursor of the last)')
    .option('--all', 'every page, not only the first')
    .action(
      run(async (ctx, options: { status?: string; scope?: string; assignee?: string; requester?: string; parent?: string; limit: number; cursor?: string; all?: boolean }) => {
        const query: ListTasksQuery = {
          status: options.status as ListTasksQuery['status'],
          scope: options.scope,
          assignee: options.assignee,
          requester: options.requester,
          parent_id: options.parent,
          limit: options.limit,
          cursor: options.cursor,
        };
        if (options.all) {
          const all: Task[] = [];
          for await (const task of ctx.client.tasks.all(query)) all.push(task);
          ctx.print({ tasks: all, next_cursor: null }, (page) => table(page.tasks, taskColumns));
          return;
        }
        ctx.print(await ctx.client.tasks.list(query), (page) => table(page.tasks, taskColumns) + (page.next_cursor ? `\nmore: --cursor ${page.next_cursor}` : ''));
      }),
    );
  tasks
    .command('show <id>')
    .description('one task')
    .action(run(async (ctx, id: string) => ctx.print(await ctx.client.tasks.get(id), record)));
  tasks
    .command('events <id>')
    .description("a task's audit trail, oldest first")
    .action(run(async (ctx, id: string) => ctx.print(await ctx.client.tasks.events(id), (events) => table(events, eventColumns))));
  tasks
    .command('placement <id>')
    .description('why the task is where it is (or why it waits)')
    .action(run(async (ctx, id: string) => ctx.print(await ctx.client.tasks.placement(id), (p) => JSON.stringify(p, null, 2))));
  tasks
    .command('create')
    .description('ask for work')
    .requiredOption('--title <title>')
    .requiredOption('--scope <scope>', 'the capability an agent needs to take it')
    .option('--description <text>')
    .option('--priority <1-5>', '1 is the most urgent', integer)
    .option('--context <json>', 'input for the worker, as JSON', jsonArgument)
    .option('--timeout-ms <ms>', 'time an attempt may run', integer)
    .option('--max-retries <n>', 'retries after a failed attempt', integer)
    .option('--parent <task-id>')
    .option('--requester <agent>', 'on behalf of this agent (admins)')
    .option('--idempotency-key <key>', 'a retry with the same key returns the same task (default: a new key each run)')
    .action(
      run(async (ctx, o: { title: string; scope: string; description?: string; priority?: number; context?: unknown; timeoutMs?: number; maxRetries?: number; parent?: string; requester?: string; idempotencyKey?: string }) => {
        const task = await ctx.client.tasks.create(
          {
            title: o.title,
            scope: o.scope,
            description: o.description,
            priority: o.priority,
            context: o.context,
            timeout_ms: o.timeoutMs,
            max_retries: o.maxRetries,
            parent_id: o.parent,
            requester: o.requester,
          },
          { idempotencyKey: o.idempotencyKey },
        );
        ctx.print(task, (t) => record(t));
      }),
    );
  tasks
    .command('cancel <id>')
    .description('cancel a task that is not finished')
    .action(run(async (ctx, id: string) => ctx.print(await ctx.client.tasks.cancel(id), (t) => `${t.id} ${t.status}`)));
  return tasks;
}

function agentsCommand(): Command {
  const agents = new Command('agents').description('the capability map; drain and undrain');
  agents
    .command('ls')
    .description('every agent: status, load, capabilities')
    .action(run(async (ctx) => ctx.print(await ctx.client.agents.list(), (rows) => table(rows, agentColumns))));
  agents
    .command('drain <name>')
    .description('assign the agent nothing new (it finishes what it holds)')
    .action(run(async (ctx, name: string) => ctx.print(await ctx.client.agents.drain(name), (a) => `${a.name} drained`)));
  agents
    .command('undrain <name>')
    .description('let the agent take work again')
    .action(run(async (ctx, name: string) => ctx.print(await ctx.client.agents.undrain(name), (a) => `${a.name} undrained`)));
  return agents;
}

function credentialsCommand(): Command {
  const credentials = new Command('credentials').description("issue, list and revoke an agent's credentials (admins)");
  credentials
    .command('issue <agent>')
    .description('a new credential; its token is printed this once')
    .addOption(new Option('--role <role>').choices(['worker', 'requester', 'observer', 'admin']).makeOptionMandatory())
    .option('--scopes <list>', 'comma-separated scopes it is limited to (default: any)', list)
    .option('--expires-at <iso-time>')
    .action(
      run(async (ctx, agent: string, o: { role: 'worker'; scopes?: string[]; expiresAt?: string }) => {
        const issued = await ctx.client.credentials.issue(agent, { role: o.role, scopes: o.scopes, expires_at: o.expiresAt });
        ctx.print(issued, (c) => `${record({ ...c, token: undefined })}\n\ntoken (shown once, keep it secret):\n${c.token}`);
      }),
    );
  credentials
    .command('ls <agent>')
    .description("the agent's credentials (never their tokens)")
    .action(run(async (ctx, agent: string) => ctx.print(await ctx.client.credentials.list(agent), (rows) => table(rows, credentialColumns))));
  credentials
    .command('revoke <agent> <credential-id>')
    .description('refused by every replica within a second')
    .action(run(async (ctx, agent: string, id: string) => ctx.print(await ctx.client.credentials.revoke(agent, id), (c) => `${c.id} revoked`)));
  return credentials;
}

/** Every command that talks to a running Dispatch over its API. */
export function apiCommands(): Command[] {
  const stats = new Command('stats')
    .description('open work by status; outcomes of the last 15 minutes')
    .action(run(async (ctx) => ctx.print(await ctx.client.stats(), (s) => record(s as unknown as Record<string, unknown>))));
  const tail = new Command('tail')
    .description("follow live: an agent's assignment stream (--agent), or a task's audit trail until it finishes (--task)")
    .option('--agent <name>', "the agent's assignments as Dispatch makes them (the agent itself, or an admin)")
    .option('--from <event-id>', 'with --agent: replay from after this event id')
    .option('--task <id>', "the task's events, polled, until it finishes")
    .option('--interval <ms>', 'with --task: poll interval', integer, 1_000)
    .action(
      run(async (ctx, o: { agent?: string; from?: string; task?: string; interval: number }) => {
        if ((o.agent === undefined) === (o.task === undefined)) throw new InvalidArgumentError('give --agent <name> or --task <id>');
        if (o.agent !== undefined) await tailAgent(ctx, o.agent, o.from);
        else await tailTask(ctx, o.task!, o.interval);
      }),
    );
  return [tasksCommand(), agentsCommand(), credentialsCommand(), stats, tail];
}

/** The `dispatch` program: global connection and output options, and the API commands. */
export function program(): Command {
  const root = new Command('dispatch')
    .description('Dispatch, the task broker of the agent swarm: run it, and operate it from a terminal')
    .option('--url <url>', 'the API (comma-separated for several replicas) [env DISPATCH_URL, default http://localhost:8600]')
    .option('--token <token>', 'bearer token [env DISPATCH_TOKEN; for a loopback URL, .dispatch/admin-token if it is yours alone]')
    .option('--as <agent>', 'X-Agent-ID: the agent to act as (header mode; an admin acting for an agent) [env DISPATCH_AGENT]')
    .option('--json', 'print JSON (for scripts) instead of tables')
    .showHelpAfterError();
  for (const command of apiCommands()) root.addCommand(command);
  return root;
}
