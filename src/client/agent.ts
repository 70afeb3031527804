import { DispatchClient, type DispatchClientOptions } from './client.js';
import { TaskError } from './errors.js';
import type { AssignmentEvent, AssignmentSubscription } from './subscription.js';
import type { Task } from './types.js';

/** What a handler gets besides its task. */
export interface TaskContext {
  /** Fires when the task is taken away (cancelled, reassigned, timed out): stop working on it, its result would be refused. */
  signal: AbortSignal;
  /** The lease this run holds; the SDK sends it with every call about the task. */
  attempt: number;
  /** Reports progress (any JSON object); extends the heartbeat deadline of a task that has one. */
  progress(payload?: Record<string, unknown>): Promise<void>;
  /** The agent's client, for anything else (creating subtasks, reading their parent…). */
  client: DispatchClient;
}

export interface RunAgentOptions extends Omit<DispatchClientOptions, 'agent'> {
  /** The agent's id: its credential's agent in token mode. */
  name: string;
  /** The scopes it serves. */
  capabilities: string[];
  /** Tasks it runs at once (registered as max_concurrent). Default 1. */
  maxConcurrent?: number;
  /** Does the work: its return value completes the task, a throw fails it (see TaskError). */
  handle: (task: Task, ctx: TaskContext) => unknown;
  /**
   * Registers the agent (standalone mode), again after each reconnection (an agent whose stream
   * was closed longer than Dispatch's heartbeat timeout was marked stopped). false in Warren mode,
   * where agents come from Warren. Default true. The open stream is the heartbeat.
   */
  register?: boolean;
  /** Stops gracefully on SIGTERM and SIGINT (Node); a second signal ends the process. Default true where `process` exists. */
  handleSignals?: boolean;
  /** Told of what goes wrong without stopping the agent (a lost connection, a refused completion…). Default: a line on stderr. */
  onError?: (error: unknown, task?: Task) => void;
}

export interface AgentRunner {
  readonly name: string;
  readonly client: DispatchClient;
  /** Tasks being handled now. */
  readonly running: number;
  /** Stops taking work, finishes what it holds, then closes the stream. */
  stop(): Promise<void>;
  /** Settles once stopped; rejects if the stream ended with an error no retry can cure (401, 403…). */
  readonly done: Promise<void>;
}

interface Run {
  task: Task;
  controller: AbortController;
}

const defaultOnError = (error: unknown, task?: Task) => {
  const what = error instanceof Error ? error.message : String(error);
  // An SDK in someone else's process: stderr is the one channel sure to be seen.
  // eslint-disable-next-line no-console
  console.error(`dispatch agent${task ? ` (task ${task.id})` : ''}: ${what}`);
};

/**
 * Runs an agent: registers it (standalone mode), holds its assignment stream, and runs
 * `handle(task, ctx)` for each task assigned, at most `maxConcurrent` at once (tasks beyond wait
 * their turn). A handler's return value completes its task; a throw fails it, retryable unless it
 * is a `TaskError` with `retryable: false`. A task taken away aborts `ctx.signal`, and nothing is
 * reported for it. `stop()` (or SIGTERM) marks the agent degraded so nothing new is assigned, lets
 * the running handlers finish and report, then closes the stream and registers the agent stopped.
 */
export async function runAgent(options: RunAgentOptions): Promise<AgentRunner> {
  const { name, capabilities, handle, onError = defaultOnError } = options;
  const maxConcurrent = options.maxConcurrent ?? 1;
  const registering = options.register ?? true;
  const client = new DispatchClient({ ...options, agent: name });
  const runs = new Map<string, Run>();
  const waiting: Task[] = [];
  let stopping: Promise<void> | undefined;
  let finishedHandling: (() => void) | undefined;

  const register = (status: 'ready' | 'degraded' | 'stopped') =>
    client.agents.register(name, { capabilities, status, max_concurrent: maxConcurrent });
  if (registering) await register('ready');

  const settleIfIdle = () => {
    if (stopping && runs.size === 0 && waiting.length === 0) finishedHandling?.();
  };

  const execute = async (task: Task, controller: AbortController) => {
    const ctx: TaskContext = {
      signal: controller.signal,
      attempt: task.attempt,
      client,
      progress: async (payload = {}) => void (await client.tasks.progress(task.id, { ...payload, attempt: task.attempt })),
    };
    let outcome: { result: unknown } | { error: unknown };
    try {
      outcome = { result: await handle(task, ctx) };
    } catch (error) {
      outcome = { error };
    }
    // Taken away: Dispatch would refuse the report, and another attempt may be under way.
    if (controller.signal.aborted) return;
    if ('result' in outcome) {
      await client.tasks.complete(task.id, outcome.result ?? null, { attempt: task.attempt });
    } else {
      const error = outcome.error;
      const message = (error instanceof Error ? error.message : String(error)) || 'handler failed';
      await client.tasks.fail(task.id, message, { retryable: error instanceof TaskError ? error.retryable : true, attempt: task.attempt });
    }
  };

  const startNext = () => {
    while (runs.size < maxConcurrent && waiting.length > 0) {
      const task = waiting.shift()!;
      const run: Run = { task, controller: new AbortController() };
      runs.set(task.id, run);
      void execute(task, run.controller)
        .catch((error: unknown) => onError(error, task))
        .finally(() => {
          if (runs.get(task.id) === run) runs.delete(task.id);
          startNext();
          settleIfIdle();
        });
    }
  };

  const onEvent = (event: AssignmentEvent) => {
    if (event.type === 'assigned') {
      const held = runs.get(event.task.id);
      // A newer attempt of a task still running here: the old run was taken away (its event lost).
      if (held && held.task.attempt !== event.task.attempt) held.controller.abort(new Error('task reassigned'));
      if (held?.task.attempt === event.task.attempt || waiting.some((t) => t.id === event.task.id && t.attempt === event.task.attempt)) return;
      waiting.push(event.task);
      startNext();
      return;
    }
    const held = runs.get(event.taskId);
    if (held && (event.attempt === null || event.attempt === held.task.attempt)) held.controller.abort(new Error(`task ${event.type}`));
    const queued = waiting.findIndex((t) => t.id === event.taskId);
    if (queued >= 0) waiting.splice(queued, 1);
    settleIfIdle();
  };

  const subscription: AssignmentSubscription = client.subscribe(name, {
    onEvent,
    onConnect: (reconnected) => {
      if (reconnected && registering && !stopping) register('ready').catch((error: unknown) => onError(error));
    },
    onReconnect: (error) => onError(error),
  });

  const signals = ['SIGTERM', 'SIGINT'] as const;
  const onSignal = (signal: (typeof signals)[number]) => {
    if (stopping) {
      // A second signal: the default behaviour (end the process) is what the person wants now.
      removeSignalHandlers();
      process.kill(process.pid, signal);
      return;
    }
    void runner.stop();
  };
  const handlesSignals = (options.handleSignals ?? true) && typeof process !== 'undefined' && typeof process.on === 'function';
  const removeSignalHandlers = () => signals.forEach((s) => process.off(s, onSignal));
  if (handlesSignals) signals.forEach((s) => process.on(s, onSignal));

  const stop = async () => {
    const handled = new Promise<void>((resolve) => (finishedHandling = resolve));
    if (registering) await register('degraded').catch((error: unknown) => onError(error));
    settleIfIdle();
    // The stream stays open meanwhile: a task taken away still aborts its handler.
    await handled;
    subscription.close();
    await subscription.done.catch(() => undefined);
    if (registering) await register('stopped').catch((error: unknown) => onError(error));
    if (handlesSignals) removeSignalHandlers();
  };

  const done = subscription.done.then(
    async () => await stopping,
    async (error: unknown) => {
      // The stream cannot be held (credential revoked, agent unknown…): nothing more will come.
      runs.forEach((run) => run.controller.abort(error));
      if (handlesSignals) removeSignalHandlers();
      throw error;
    },
  );
  done.catch(() => undefined);

  const runner: AgentRunner = {
    name,
    client,
    get running() {
      return runs.size;
    },
    stop: async () => {
      stopping ??= stop();
      await stopping;
    },
    done,
  };
  return runner;
}
