import { DispatchApiError } from './errors.js';
import { AssignmentSubscription, toAssignmentEvent, type AssignmentEvent, type SubscribeOptions } from './subscription.js';
import { Transport, type CallOptions, type TransportOptions } from './transport.js';
import type {
  Agent,
  CreateTaskInput,
  Credential,
  IssueCredentialInput,
  IssuedCredential,
  ListTasksQuery,
  PatchTaskInput,
  Placement,
  QueueStatsJson,
  RegisterAgentInput,
  Task,
  TaskEvent,
  TaskPage,
} from './types.js';

export type DispatchClientOptions = TransportOptions;

/** What a long poll of an agent's assignments answers: the events, and the cursor to poll from next. */
export interface AssignmentPoll {
  events: AssignmentEvent[];
  cursor: string;
}

interface PollJson {
  events: { id: string; event: string; task: Record<string, unknown> }[];
  cursor: string;
}

/** Attempts remembered per task; the oldest are forgotten past this many (a client holds far fewer). */
const REMEMBERED_ATTEMPTS = 10_000;

const enc = encodeURIComponent;

/**
 * A typed client of the Dispatch API: every route, one method each. Calls are retried on 429 and
 * 503 (honouring Retry-After) and when no answer came (moving on to the next replica given);
 * errors are thrown as DispatchApiError. A task created gets an Idempotency-Key unless one is
 * given, the same on every retry, so a create is never made twice. The client remembers the
 * attempt (the lease) of each task it receives, from the stream or a read, and sends it with
 * progress, complete and fail.
 */
export class DispatchClient {
  readonly transport: Transport;
  private readonly attempts = new Map<string, number>();

  constructor(options: DispatchClientOptions) {
    this.transport = new Transport(options);
  }

  private async call<T>(method: string, path: string, options?: CallOptions): Promise<T> {
    return (await this.transport.call<T>(method, path, options)).body;
  }

  /** Keeps the attempt of a task that is being worked on, for the worker calls that follow. */
  private remember(task: Task): Task {
    if (task.status === 'assigned' || task.status === 'running') {
      this.attempts.delete(task.id);
      this.attempts.set(task.id, task.attempt);
      if (this.attempts.size > REMEMBERED_ATTEMPTS) this.attempts.delete(this.attempts.keys().next().value!);
    } else if (task.status !== 'pending') {
      this.attempts.delete(task.id);
    }
    return task;
  }

  /** The attempt this client holds of a task, if it has seen it assigned. */
  attemptOf(taskId: string): number | undefined {
    return this.attempts.get(taskId);
  }

  private observe = (event: AssignmentEvent): void => {
    if (event.type === 'assigned') this.remember(event.task);
    else if (event.attempt === null || this.attempts.get(event.taskId) === event.attempt) this.attempts.delete(event.taskId);
  };

  /**
   * A worker call (complete, fail) whose first try may have taken effect before its answer was
   * lost: a retry then answers 409. The audit trail says whether it was ours (`events` records the
   * attempt that did it); if so the call succeeded and the task is returned.
   */
  private async workerCall(id: string, path: string, body: Record<string, unknown>, events: string[]): Promise<Task> {
    const attempt = (body.attempt as number | undefined) ?? this.attempts.get(id);
    const sent = attempt === undefined ? body : { ...body, attempt };
    try {
      const result = await this.transport.call<Task>('POST', `/api/v1/tasks/${enc(id)}/${path}`, { body: sent });
      if (path !== 'progress') this.attempts.delete(id);
      return this.remember(result.body);
    } catch (error) {
      if (!(error instanceof DispatchApiError && error.code === 'conflict' && attempt !== undefined)) throw error;
      const trail = await this.tasks.events(id);
      if (!trail.some((e) => events.includes(e.event) && e.attempt === attempt)) throw error;
      this.attempts.delete(id);
      return await this.tasks.get(id);
    }
  }

  readonly tasks = {
    /** POST /api/v1/tasks. `idempotencyKey` defaults to a random UUID, reused by retries. */
    create: async (input: CreateTaskInput, options: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<Task & { replayed: boolean }> => {
      const key = options.idempotencyKey ?? globalThis.crypto.randomUUID();
      const result = await this.transport.call<Task>('POST', '/api/v1/tasks', { body: input, headers: { 'idempotency-key': key }, signal: options.signal });
      return Object.assign(result.body, { replayed: result.header('idempotent-replayed') === 'true' });
    },
    /** GET /api/v1/tasks: one page, newest first; pass `next_cursor` back as `cursor` for the next. */
    list: async (query: ListTasksQuery = {}): Promise<TaskPage> => {
      const page = await this.call<TaskPage>('GET', '/api/v1/tasks', { query });
      page.tasks.forEach((t) => this.remember(t));
      return page;
    },
    /** Every task the query matches, page after page. */
    all: (query: ListTasksQuery = {}): AsyncGenerator<Task> => this.everyTask(query),
    get: async (id: string): Promise<Task> => this.remember(await this.call<Task>('GET', `/api/v1/tasks/${enc(id)}`)),
    events: async (id: string): Promise<TaskEvent[]> => (await this.call<{ events: TaskEvent[] }>('GET', `/api/v1/tasks/${enc(id)}/events`)).events,
    placement: async (id: string): Promise<Placement> => await this.call<Placement>('GET', `/api/v1/tasks/${enc(id)}/placement`),
    /** PATCH: cancel and/or replace the context, in one statement. */
    update: async (id: string, patch: PatchTaskInput): Promise<Task> => await this.call<Task>('PATCH', `/api/v1/tasks/${enc(id)}`, { body: patch }),
    cancel: async (id: string): Promise<Task> => await this.tasks.update(id, { status: 'cancelled' }),
    /** Any JSON object; the attempt this client holds is added unless the payload has one. */
    progress: async (id: string, payload: Record<string, unknown> = {}): Promise<Task> => await this.workerCall(id, 'progress', payload, []),
    complete: async (id: string, result?: unknown, options: { attempt?: number } = {}): Promise<Task> =>
      await this.workerCall(id, 'complete', { result: result ?? null, attempt: options.attempt }, ['completed']),
    /** `retryable` (default true): whether Dispatch may give the task another attempt. */
    fail: async (id: string, error: string, options: { retryable?: boolean; attempt?: number } = {}): Promise<Task> =>
      await this.workerCall(id, 'fail', { error, retryable: options.retryable ?? true, attempt: options.attempt }, ['failed', 'fail_retry']),
  };

  private async *everyTask(query: ListTasksQuery): AsyncGenerator<Task> {
    let cursor = query.cursor;
    do {
      const page = await this.tasks.list({ ...query, cursor });
      yield* page.tasks;
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
  }

  readonly agents = {
    /** PUT /api/v1/agents/:name: standalone registration, repeated as the heartbeat. */
    register: async (name: string, input: RegisterAgentInput): Promise<Agent> => await this.call<Agent>('PUT', `/api/v1/agents/${enc(name)}`, { body: input }),
    list: async (): Promise<Agent[]> => (await this.call<{ agents: Agent[] }>('GET', '/api/v1/agents')).agents,
    get: async (name: string): Promise<Agent> => await this.call<Agent>('GET', `/api/v1/agents/${enc(name)}`),
    drain: async (name: string): Promise<Agent> => await this.call<Agent>('POST', `/api/v1/agents/${enc(name)}/drain`),
    undrain: async (name: string): Promise<Agent> => await this.call<Agent>('DELETE', `/api/v1/agents/${enc(name)}/drain`),
    /**
     * Long poll (for clients that cannot hold a stream): answers at once with what happened after
     * `cursor` (without one: the tasks held now), else as soon as something does, else after `wait`
     * seconds (at most 60) with no events. Poll again from the cursor it returns.
     */
    poll: async (name: string, options: { wait?: number; cursor?: string; signal?: AbortSignal } = {}): Promise<AssignmentPoll> => {
      const poll = await this.call<PollJson>('GET', `/api/v1/agents/${enc(name)}/assignments`, {
        query: { wait: options.wait, cursor: options.cursor },
        signal: options.signal,
      });
      const events = poll.events.flatMap((e) => toAssignmentEvent(e.event, e.id, e.task) ?? []);
      events.forEach(this.observe);
      return { events, cursor: poll.cursor };
    },
  };

  readonly credentials = {
    issue: async (agent: string, input: IssueCredentialInput): Promise<IssuedCredential> =>
      await this.call<IssuedCredential>('POST', `/api/v1/agents/${enc(agent)}/credentials`, { body: input }),
    list: async (agent: string): Promise<Credential[]> =>
      (await this.call<{ credentials: Credential[] }>('GET', `/api/v1/agents/${enc(agent)}/credentials`)).credentials,
    revoke: async (agent: string, id: string): Promise<Credential> =>
      await this.call<Credential>('DELETE', `/api/v1/agents/${enc(agent)}/credentials/${enc(id)}`),
  };

  /** GET /api/v1/stats: open work by status, recent outcomes. */
  async stats(): Promise<QueueStatsJson> {
    return await this.call<QueueStatsJson>('GET', '/api/v1/stats');
  }

  /**
   * The agent's assignment stream (GET /api/v1/agents/:name/assignments, text/event-stream), held
   * open until closed: see AssignmentSubscription.
   */
  subscribe(agent: string, options: SubscribeOptions = {}): AssignmentSubscription {
    return new AssignmentSubscription(this.transport, `/api/v1/agents/${enc(agent)}/assignments`, options, this.observe);
  }
}

/** A client of one Dispatch (or several replicas of it). */
export function createClient(options: DispatchClientOptions): DispatchClient {
  return new DispatchClient(options);
}
