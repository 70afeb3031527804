// No vitest imports here: the benchmark (bench/) drives simulated agents with this helper too.
import { assertDocumentedResponse, UndocumentedResponse } from './openapi-contract.js';

/**
 * A client that spreads calls over several replicas and fails over when one stops answering
 * (refused or reset connection): the next replica gets the call, and the dead one is skipped for
 * a second. HTTP errors are returned, not thrown; only "no replica answered" throws.
 */
export class ReplicaClient {
  private readonly downUntil: number[];
  private next = 0;

  constructor(
    private readonly urls: readonly string[],
    private readonly timeoutMs = 15_000,
  ) {
    if (urls.length === 0) throw new Error('ReplicaClient needs at least one URL');
    this.downUntil = urls.map(() => 0);
  }

  /** `prefer` picks the first replica to try (e.g. an agent's index), so load spreads evenly. */
  async call<T = any>(
    method: string,
    path: string,
    { agent, body, prefer, headers }: { agent: string; body?: unknown; prefer?: number; headers?: Record<string, string> },
  ): Promise<{ status: number; body: T }> {
    const start = prefer ?? this.next++;
    let lastError: unknown;
    for (let i = 0; i < this.urls.length * 2; i++) {
      const index = (start + i) % this.urls.length;
      if (this.downUntil[index]! > Date.now() && i < this.urls.length) continue;
      let answer: { status: number; contentType: string | null; body: unknown };
      try {
        const response = await fetch(`${this.urls[index]}${path}`, {
          method,
          headers: { 'content-type': 'application/json', 'x-agent-id': agent, ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
        });
        const text = await response.text();
        answer = { status: response.status, contentType: response.headers.get('content-type'), body: text ? JSON.parse(text) : null };
      } catch (error) {
        lastError = error;
        this.downUntil[index] = Date.now() + 1_000;
        continue;
      }
      // Outside the try: an undocumented answer fails the caller, it is no reason to fail over.
      assertDocumentedResponse({ method, url: path, ...answer });
      return { status: answer.status, body: answer.body as T };
    }
    throw new Error(`no replica answered ${method} ${path}: ${String((lastError as Error)?.cause ?? lastError)}`);
  }
}

export interface SimulatedAgentsOptions {
  /** API base URLs of the replicas; each agent starts at a different one and fails over. */
  urls: readonly string[];
  count: number;
  namePrefix?: string;
  capabilities: (index: number) => string[];
  /** Per-agent limit sent at registration; undefined or null uses the broker's default. */
  maxConcurrent?: (index: number) => number | null | undefined;
  /** Report progress (assigned -> running) before completing. */
  progress?: boolean;
  /** Simulated work per task, in ms (default 0). */
  workMs?: () => number;
  /** Longest wait between polls when an agent has nothing to do (doubles from 5 ms up to this). */
  idlePollMs?: number;
  /** Re-registration interval; keeps the agent from counting as silent (stopped). */
  heartbeatMs?: number;
  /** Hard bound: every loop ends by this many ms after start, done or not. */
  deadlineMs: number;
  /** Agents stop polling once this returns true (checked every loop). */
  until?: () => boolean;
}

/**
 * The replica tests' swarm: agent i serves two of the three scopes, so agents compete for tasks
 * in overlapping pools; each reports progress, works 0 to 3 ms a task, and heartbeats.
 */
export function overlappingSwarm(
  scopes: readonly [string, string, string],
  options: Pick<SimulatedAgentsOptions, 'urls' | 'count' | 'namePrefix' | 'until' | 'maxConcurrent'>,
): SimulatedAgentsOptions {
  return {
    capabilities: (i) => [scopes[i % 3]!, scopes[(i + 1) % 3]!],
    progress: true,
    workMs: () => Math.floor(Math.random() * 4),
    idlePollMs: 50,
    heartbeatMs: 10_000,
    deadlineMs: 170_000,
    ...options,
  };
}

export interface SimulatedAgentStats {
  polls: number;
  completed: number;
  progressed: number;
  /** 409s: e.g. a completion retried on another replica after the first one died mid-call. */
  conflicts: number;
  /** Calls no replica answered (all down or timing out). */
  networkErrors: number;
  /** Other non-2xx answers. */
  httpErrors: number;
  lastHttpError: string | null;
}

interface ListedTask {
  id: string;
  attempt: number;
  status: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * N agents in one process, each a bounded loop: register over REST, then poll
 * `GET /api/v1/tasks?assignee=<me>&status=assigned`, optionally report progress, and complete
 * every task it holds, until `until()` is true, `stop()` is called, or the deadline passes.
 */
export class SimulatedAgents {
  readonly stats: SimulatedAgentStats = {
    polls: 0,
    completed: 0,
    progressed: 0,
    conflicts: 0,
    networkErrors: 0,
    httpErrors: 0,
    lastHttpError: null,
  };
  readonly names: string[];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private readonly client: ReplicaClient;
  private readonly deadline: number;

  private constructor(private readonly options: SimulatedAgentsOptions) {
    this.client = new ReplicaClient(options.urls);
    this.names = Array.from({ length: options.count }, (_, i) => `${options.namePrefix ?? 'sim-agent'}-${String(i).padStart(3, '0')}`);
    this.deadline = Date.now() + options.deadlineMs;
  }

  /** Registers every agent (so they are all known before work arrives), then starts their loops. */
  static async start(options: SimulatedAgentsOptions): Promise<SimulatedAgents> {
    const agents = new SimulatedAgents(options);
    await Promise.all(agents.names.map((name, i) => agents.register(name, i)));
    agents.loops = agents.names.map((name, i) => agents.run(name, i));
    return agents;
  }

  /** Ends every loop after its current step; resolves with the totals. */
  async stop(): Promise<SimulatedAgentStats> {
    this.stopped = true;
    await Promise.all(this.loops);
    return this.stats;
  }

  /** Resolves when every loop has ended by itself (until() or the deadline). */
  async finished(): Promise<SimulatedAgentStats> {
    await Promise.all(this.loops);
    return this.stats;
  }

  private shouldStop(): boolean {
    return this.stopped || Date.now() > this.deadline || (this.options.until?.() ?? false);
  }

  private async register(name: string, index: number): Promise<void> {
    const maxConcurrent = this.options.maxConcurrent?.(index);
    const body = { capabilities: this.options.capabilities(index), status: 'ready', ...(maxConcurrent ? { max_concurrent: maxConcurrent } : {}) };
    const response = await this.client.call('PUT', `/api/v1/agents/${name}`, { agent: name, body, prefer: index });
    if (response.status !== 200) throw new Error(`registering ${name} failed: ${response.status} ${JSON.stringify(response.body)}`);
  }

  private record(status: number, body: unknown, what: string): boolean {
    if (status >= 200 && status < 300) return true;
    if (status === 409) this.stats.conflicts++;
    else {
      this.stats.httpErrors++;
      this.stats.lastHttpError = `${what}: ${status} ${JSON.stringify(body).slice(0, 300)}`;
    }
    return false;
  }

  private async work(name: string, index: number, task: ListedTask): Promise<void> {
    const path = `/api/v1/tasks/${task.id}`;
    if (this.options.progress) {
      const progressed = await this.client.call('POST', `${path}/progress`, { agent: name, body: { attempt: task.attempt, step: 1 }, prefer: index });
      if (!this.record(progressed.status, progressed.body, 'progress')) return;
      this.stats.progressed++;
    }
    const workMs = this.options.workMs?.() ?? 0;
    if (workMs > 0) await sleep(workMs);
    const done = await this.client.call('POST', `${path}/complete`, { agent: name, body: { attempt: task.attempt, result: { by: name } }, prefer: index });
    if (this.record(done.status, done.body, 'complete')) this.stats.completed++;
  }

  private async run(name: string, index: number): Promise<void> {
    const maxIdle = this.options.idlePollMs ?? 100;
    let idle = 5;
    let lastBeat = Date.now();
    while (!this.shouldStop()) {
      try {
        if (this.options.heartbeatMs && Date.now() - lastBeat > this.options.heartbeatMs) {
          await this.register(name, index);
          lastBeat = Date.now();
        }
        this.stats.polls++;
        const listed = await this.client.call<{ tasks: ListedTask[] }>('GET', `/api/v1/tasks?assignee=${encodeURIComponent(name)}&status=assigned&limit=100`, {
          agent: name,
          prefer: index,
        });
        if (!this.record(listed.status, listed.body, 'poll') || listed.body.tasks.length === 0) {
          await sleep(idle);
          idle = Math.min(idle * 2, maxIdle);
          continue;
        }
        idle = 5;
        await Promise.all(listed.body.tasks.map((task) => this.work(name, index, task)));
      } catch (error) {
        if (error instanceof UndocumentedResponse) throw error;
        this.stats.networkErrors++;
        await sleep(100);
      }
    }
  }
}

/**
 * Creates `count` tasks over REST through the replicas, `concurrency` requests at a time.
 * Each carries an Idempotency-Key, so a creation retried on another replica (the first died
 * before answering) cannot make a second task. Returns the ids in creation order.
 */
export async function createTasksOverHttp(
  urls: readonly string[],
  { count, concurrency = 16, scope, requester = 'sim-requester', priority }: {
    count: number;
    concurrency?: number;
    scope: (index: number) => string;
    requester?: string;
    priority?: (index: number) => number;
  },
): Promise<string[]> {
  const client = new ReplicaClient(urls);
  const keyPrefix = `create-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const ids: string[] = new Array<string>(count);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const body = { title: `task ${i}`, scope: scope(i), ...(priority ? { priority: priority(i) } : {}) };
      const headers = { 'idempotency-key': `${keyPrefix}-${i}` };
      const response = await client.call('POST', '/api/v1/tasks', { agent: requester, body, prefer: i, headers });
      if (response.status !== 201 && response.status !== 200) throw new Error(`creating task ${i} failed: ${response.status} ${JSON.stringify(response.body)}`);
      ids[i] = response.body.id as string;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return ids;
}
