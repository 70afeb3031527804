import { FakeHttpServer, type FakeReply } from './fake-http-server.js';

export type { FailureMode, RecordedCall } from './fake-http-server.js';

export interface FakeWarrenOptions {
  /** Required bearer token; requests without it get 401. Unset: no check. */
  token?: string;
  /** How long a woken agent stays 'starting' before it is 'ready'. */
  wakeDelayMs?: number;
  agents?: { name: string; status: string }[];
}

/**
 * Warren's admin API on loopback: `GET /admin/agents`, `GET /admin/agents/:name`,
 * `POST /admin/agents/:name/wake`. Agent statuses are plain strings so tests can send ones
 * Dispatch does not know. Emits 'status' (name, status) on every change, so tests can wait on
 * it instead of sleeping.
 */
export class FakeWarren extends FakeHttpServer {
  private readonly agents = new Map<string, string>();
  private readonly wakeTimers = new Set<NodeJS.Timeout>();
  wakeDelayMs: number;

  private constructor(options: FakeWarrenOptions) {
    super(options.token);
    this.wakeDelayMs = options.wakeDelayMs ?? 50;
    for (const agent of options.agents ?? []) this.agents.set(agent.name, agent.status);
  }

  static async start(options: FakeWarrenOptions = {}): Promise<FakeWarren> {
    const fake = new FakeWarren(options);
    await fake.listen();
    return fake;
  }

  setStatus(name: string, status: string): void {
    this.agents.set(name, status);
    this.emit('status', name, status);
  }

  status(name: string): string | undefined {
    return this.agents.get(name);
  }

  ready(name: string): void {
    this.setStatus(name, 'ready');
  }

  sleep(name: string): void {
    this.setStatus(name, 'sleeping');
  }

  stop(name: string): void {
    this.setStatus(name, 'stopped');
  }

  degrade(name: string): void {
    this.setStatus(name, 'degraded');
  }

  /** Warren forgets the agent entirely. */
  remove(name: string): void {
    this.agents.delete(name);
  }

  /** Names of the agents a wake was requested for, in order. */
  get wakes(): string[] {
    return this.calls
      .filter((call) => call.method === 'POST' && call.path.endsWith('/wake'))
      .map((call) => decodeURIComponent(call.path.split('/')[3] ?? ''));
  }

  /** Resolves when `name` reaches `status` (at once if it already has). */
  waitForStatus(name: string, status: string, timeoutMs = 5_000): Promise<void> {
    if (this.agents.get(name) === status) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('status', listener);
        reject(new Error(`fake warren: ${name} did not become ${status} within ${timeoutMs} ms`));
      }, timeoutMs);
      const listener = (changed: string, to: string) => {
        if (changed !== name || to !== status) return;
        clearTimeout(timer);
        this.off('status', listener);
        resolve();
      };
      this.on('status', listener);
    });
  }

  override async close(): Promise<void> {
    for (const timer of this.wakeTimers) clearTimeout(timer);
    this.wakeTimers.clear();
    await super.close();
  }

  protected route(method: string, path: string): FakeReply {
    const parts = path.split('/').filter(Boolean);
    if (parts[0] !== 'admin' || parts[1] !== 'agents') return { status: 404, body: { error: 'not found' } };
    if (method === 'GET' && parts.length === 2) {
      return { status: 200, body: [...this.agents].map(([name, status]) => ({ name, status })) };
    }
    const name = decodeURIComponent(parts[2] ?? '');
    const status = this.agents.get(name);
    if (status === undefined) return { status: 404, body: { error: `no agent ${name}` } };
    if (method === 'GET' && parts.length === 3) return { status: 200, body: { name, status } };
    if (method === 'POST' && parts.length === 4 && parts[3] === 'wake') {
      this.wake(name, status);
      return { status: 202, body: { name, status: this.agents.get(name) } };
    }
    return { status: 405, body: { error: 'method not allowed' } };
  }

  /** A sleeping or stopped agent boots: 'starting' now, 'ready' after wakeDelayMs. */
  private wake(name: string, status: string): void {
    if (status !== 'sleeping' && status !== 'stopped') return;
    this.setStatus(name, 'starting');
    const timer = setTimeout(() => {
      this.wakeTimers.delete(timer);
      // A test may have changed the agent meanwhile (e.g. stopped it): then the boot failed.
      if (this.agents.get(name) === 'starting') this.setStatus(name, 'ready');
    }, this.wakeDelayMs);
    this.wakeTimers.add(timer);
  }
}
