import type { FakeWarren } from '../../test/helpers/fake-warren.js';
import { ChaosClient, NoReplicaAnswered, type ClientAnswer } from './client.js';
import { plannedAction, workMs, type Action, type AgentSpec, type ChaosProfile } from './profile.js';

/**
 * How the broker answered the call that ends an attempt (complete or fail), or why none was made:
 * accepted  2xx
 * rejected  409/403/404: the attempt was already over (timed out, reassigned) when we called
 * ambiguous a 409 after a retried call: the first try may have succeeded (resolved by the checker)
 * abandoned the agent never answered on purpose (hang, stop)
 * unanswered no replica answered before the run ended
 */
export type Outcome = 'accepted' | 'rejected' | 'ambiguous' | 'abandoned' | 'unanswered';

/** One row of the chaos process's logbook: what one agent did with one attempt. */
export interface AttemptLog {
  taskId: string;
  index: number;
  attempt: number;
  agent: string;
  action: Action;
  progress: Outcome | 'skipped';
  outcome: Outcome;
  /** The result sent with a completion, or the error sent with a failure. */
  result?: unknown;
  error?: string;
  /** HTTP status of the last answer to the ending call (or to the progress call that was refused). */
  status?: number;
}

/** An interval during which an agent was stopped in Warren (its tasks may be reassigned). */
export interface StopWindow {
  agent: string;
  from: number;
  to: number;
}

interface ListedTask {
  id: string;
  attempt: number;
  status: string;
  context: { chaos_index?: number } | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface ChaosAgentsOptions {
  profile: ChaosProfile;
  specs: AgentSpec[];
  urls: () => readonly string[];
  warren: FakeWarren;
  /** Hard end of every loop and call. */
  deadline: number;
  idlePollMs?: number;
}

export interface AgentCounters {
  polls: number;
  attempts: number;
  stops: number;
  /** Listed tasks that carried no chaos index (never expected). */
  foreignTasks: number;
  /** Other 4xx answers to agent calls (never expected). */
  unexpectedAnswers: string[];
}

/**
 * The simulated swarm: each agent polls for tasks assigned to it, reports progress with its
 * attempt number, then does what the seeded plan says for that (task, attempt). Every decision
 * and every answer goes into the logbook, which the checker compares with the database.
 */
export class ChaosAgents {
  readonly log = new Map<string, AttemptLog>();
  readonly stopWindows: StopWindow[] = [];
  readonly counters: AgentCounters = { polls: 0, attempts: 0, stops: 0, foreignTasks: 0, unexpectedAnswers: [] };
  readonly client: ChaosClient;
  private stopping = false;
  private readonly loops: Promise<void>[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  /** Bumped when an agent stops: work begun before it is abandoned. */
  private readonly epoch = new Map<string, number>();
  private readonly stoppedUntil = new Map<string, number>();

  constructor(private readonly options: ChaosAgentsOptions) {
    this.client = new ChaosClient(options.urls, { deadline: () => options.deadline, stopped: () => this.stopping });
  }

  start(): void {
    for (const [i, spec] of this.options.specs.entries()) this.loops.push(this.run(spec.name, i));
  }

  /** Ends every loop and waits for calls in flight (bounded by the client deadline). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
    await Promise.all([...this.inFlight]);
  }

  entries(): AttemptLog[] {
    return [...this.log.values()];
  }

  private async run(name: string, index: number): Promise<void> {
    const maxIdle = this.options.idlePollMs ?? 250;
    let idle = 20;
    while (!this.stopping && Date.now() < this.options.deadline) {
      const until = this.stoppedUntil.get(name) ?? 0;
      if (until > Date.now()) {
        await sleep(Math.min(100, until - Date.now()));
        continue;
      }
      let listed: ListedTask[] = [];
      try {
        this.counters.polls++;
        const answer = await this.client.call<{ tasks: ListedTask[] }>(
          'GET',
          `/api/v1/tasks?assignee=${encodeURIComponent(name)}&status=assigned&limit=50`,
          { agent: name, prefer: index },
        );
        if (answer.status === 200) listed = answer.body.tasks;
        else this.unexpected(name, 'poll', answer);
      } catch (error) {
        if (!(error instanceof NoReplicaAnswered)) throw error;
      }
      let fresh = 0;
      for (const task of listed) {
        if (this.log.has(`${task.id}:${task.attempt}`)) continue;
        fresh++;
        const work = this.handle(name, index, task).finally(() => this.inFlight.delete(work));
        this.inFlight.add(work);
      }
      if (fresh > 0) idle = 20;
      else {
        // Jitter keeps a hundred idle agents from polling in lockstep.
        await sleep(idle * (0.75 + Math.random() * 0.5));
        idle = Math.min(idle * 2, maxIdle);
      }
    }
  }

  private unexpected(agent: string, what: string, answer: ClientAnswer): void {
    if (this.counters.unexpectedAnswers.length < 50) {
      this.counters.unexpectedAnswers.push(`${agent} ${what}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
    }
  }

  /** Ends an attempt's call: accepted, rejected (the attempt was over), or ambiguous. */
  private outcomeOf(agent: string, what: string, answer: ClientAnswer): Outcome {
    if (answer.status >= 200 && answer.status < 300) return 'accepted';
    if (answer.status === 409 || answer.status === 403 || answer.status === 404) return answer.ambiguous ? 'ambiguous' : 'rejected';
    this.unexpected(agent, what, answer);
    return 'rejected';
  }

  private async handle(agent: string, agentIndex: number, task: ListedTask): Promise<void> {
    const index = task.context?.chaos_index;
    if (typeof index !== 'number') {
      this.counters.foreignTasks++;
      return;
    }
    this.counters.attempts++;
    const action = plannedAction(this.options.profile, index, task.attempt);
    const entry: AttemptLog = { taskId: task.id, index, attempt: task.attempt, agent, action, progress: 'skipped', outcome: 'unanswered' };
    this.log.set(`${task.id}:${task.attempt}`, entry);
    const myEpoch = this.epoch.get(agent) ?? 0;
    const stillUp = () => (this.epoch.get(agent) ?? 0) === myEpoch;
    const path = `/api/v1/tasks/${task.id}`;
    try {
      const progressed = await this.client.call('POST', `${path}/progress`, { agent, prefer: agentIndex, body: { attempt: task.attempt, step: 1 } });
      entry.progress = this.outcomeOf(agent, 'progress', progressed);
      if (entry.progress !== 'accepted' && entry.progress !== 'ambiguous') {
        // The attempt ended before we started (timed out, or returned when we were stopped).
        entry.outcome = 'rejected';
        entry.status = progressed.status;
        return;
      }
      if (action === 'hang') {
        entry.outcome = 'abandoned';
        return;
      }
      if (action === 'stop') {
        entry.outcome = 'abandoned';
        this.stopAgent(agent);
        return;
      }
      await sleep(workMs(this.options.profile, index, task.attempt));
      if (!stillUp()) {
        entry.outcome = 'abandoned';
        return;
      }
      let answer: ClientAnswer;
      if (action === 'complete') {
        entry.result = { by: agent, attempt: task.attempt, chaos_index: index };
        answer = await this.client.call('POST', `${path}/complete`, { agent, prefer: agentIndex, body: { attempt: task.attempt, result: entry.result } });
      } else {
        entry.error = `chaos ${action === 'fail_retryable' ? 'retryable' : 'final'} failure of task ${index} attempt ${task.attempt} by ${agent}`;
        answer = await this.client.call('POST', `${path}/fail`, {
          agent,
          prefer: agentIndex,
          body: { attempt: task.attempt, error: entry.error, retryable: action === 'fail_retryable' },
        });
      }
      entry.status = answer.status;
      entry.outcome = this.outcomeOf(agent, action, answer);
    } catch (error) {
      if (!(error instanceof NoReplicaAnswered)) throw error;
      entry.outcome = 'unanswered';
    }
  }

  /** The agent goes away (Warren says stopped) and comes back ready after agentStopMs. */
  private stopAgent(agent: string): void {
    this.counters.stops++;
    this.epoch.set(agent, (this.epoch.get(agent) ?? 0) + 1);
    const from = Date.now();
    const to = from + this.options.profile.agentStopMs;
    this.stoppedUntil.set(agent, to);
    this.stopWindows.push({ agent, from, to });
    this.options.warren.stop(agent);
    const timer = setTimeout(() => {
      // A second stop during this one extends the window: its own timer brings the agent back.
      if ((this.stoppedUntil.get(agent) ?? 0) > Date.now()) return;
      this.options.warren.ready(agent);
      this.stoppedUntil.delete(agent);
    }, this.options.profile.agentStopMs + 1);
    timer.unref();
  }
}
