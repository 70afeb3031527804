/**
 * The chaos agents' HTTP client. Like test/helpers/simulated-agents.ts's ReplicaClient it fails
 * over between replicas, but it also (1) reads the list of live replicas on every call, because
 * replicas are killed and restarted on new ports during a run, (2) retries 503 (database down)
 * and network errors until its deadline, and (3) reports whether the answer is ambiguous: a
 * request sent to a replica that died before answering may have been applied, so a 409 on the
 * retry may be our own earlier success. The checker resolves those few from the events table.
 */

export interface ClientAnswer<T = unknown> {
  status: number;
  body: T;
  /** A network error happened after the request may have reached a replica. */
  ambiguous: boolean;
}

export interface ClientStats {
  requests: number;
  /** 503 answers (database unreachable) that were retried. */
  unavailable: number;
  /** Network errors (refused, reset, timed out) that were retried on another replica. */
  networkErrors: number;
  /** 500 answers: a replica failed in a way it did not classify. Each is a finding. */
  serverErrors: number;
  lastServerError: string | null;
}

export class NoReplicaAnswered extends Error {
  override name = 'NoReplicaAnswered';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ChaosClient {
  readonly stats: ClientStats = { requests: 0, unavailable: 0, networkErrors: 0, serverErrors: 0, lastServerError: null };
  private next = 0;

  constructor(
    private readonly urls: () => readonly string[],
    private readonly options: { deadline: () => number; timeoutMs?: number; stopped?: () => boolean },
  ) {}

  /**
   * Sends until a replica gives an answer other than 503 or 5xx, or the deadline passes (then
   * throws NoReplicaAnswered). `prefer` spreads agents over replicas.
   */
  async call<T = unknown>(
    method: string,
    path: string,
    { agent, body, prefer, headers }: { agent: string; body?: unknown; prefer?: number; headers?: Record<string, string> },
  ): Promise<ClientAnswer<T>> {
    let ambiguous = false;
    let backoff = 50;
    let turn = prefer ?? this.next++;
    for (;;) {
      if (Date.now() > this.options.deadline() || this.options.stopped?.()) {
        throw new NoReplicaAnswered(`${method} ${path}: no answer before the deadline`);
      }
      const urls = this.urls();
      const url = urls.length > 0 ? urls[turn++ % urls.length] : undefined;
      if (!url) {
        await sleep(backoff);
        continue;
      }
      this.stats.requests++;
      try {
        const response = await fetch(`${url}${path}`, {
          method,
          headers: { 'content-type': 'application/json', 'x-agent-id': agent, ...headers },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
        });
        const text = await response.text();
        if (response.status === 503 || response.status >= 500) {
          if (response.status === 503) this.stats.unavailable++;
          else {
            this.stats.serverErrors++;
            this.stats.lastServerError = `${method} ${path} -> ${response.status} ${text.slice(0, 300)}`;
          }
          // A 5xx (503 included: the connection can drop during COMMIT) may come after the change
          // committed; a later 2xx is unambiguous, a later 409 may be our own earlier success.
          ambiguous ||= method !== 'GET';
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 1_000);
          continue;
        }
        return { status: response.status, body: (text ? JSON.parse(text) : null) as T, ambiguous };
      } catch {
        this.stats.networkErrors++;
        ambiguous ||= method !== 'GET';
        await sleep(Math.min(backoff, 200));
        backoff = Math.min(backoff * 2, 1_000);
      }
    }
  }
}
