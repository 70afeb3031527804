import pg from 'pg';
import { tryAdvisoryLock } from './advisory-lock.queries.js';
import type { Logger } from '../observability/logger.js';

export interface ListenerOptions {
  /** A fresh, unconnected client each time (one connection, held for the LISTEN). */
  newClient: () => pg.Client;
  /** What each channel's notification calls, with its payload. */
  channels: Record<string, (payload: string) => void>;
  /** After every (re)connection: notifications sent while disconnected were lost, so re-read. */
  onListening: () => void;
  /** Wait before reconnecting after the connection failed. */
  retryMs?: number;
}

/**
 * LISTEN on the replica's channels over one dedicated connection (a pooled one would be handed
 * back and lose the subscriptions; one per channel would cost a connection each, and connections
 * are what many replicas on one server run out of first), reconnecting after a failure for as
 * long as it runs. The same session holds the replica's leases (tryHold) and runs the reads that
 * follow its notifications (query).
 */
export class NotificationListener {
  private client: pg.Client | null = null;
  /** The client once its LISTENs are in place; null while (re)connecting. */
  private listening: pg.Client | null = null;
  /** Session advisory locks this connection holds (see tryHold); they go with it. */
  private readonly held = new Set<number>();
  private stopped = true;
  private retry: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: ListenerOptions,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    const client = this.client;
    this.client = null;
    this.listening = null;
    this.held.clear();
    await client?.end().catch(() => {});
  }

  /**
   * Takes the session advisory lock `key` on this connection if nobody holds it (true when held
   * now). A lease that lives as long as the replica's LISTEN session: a replica that dies or
   * loses its connection frees it at once, with no extra connection per replica.
   */
  async tryHold(key: number): Promise<boolean> {
    if (this.held.has(key)) return true;
    const client = this.listening;
    if (client === null) return false;
    const locked = await tryAdvisoryLock(client, key).catch(() => false);
    // Taken on a connection lost meanwhile: that session, and the lock with it, is gone.
    if (locked && this.listening === client) this.held.add(key);
    return this.held.has(key);
  }

  /**
   * Runs a statement on this session; one given a name is prepared once per connection. For the
   * short reads that follow its notifications (the assignment hub's live read), which then never
   * wait for a pooled connection. Fails while the connection is being (re)opened.
   */
  async query<R extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<R>> {
    const client = this.listening;
    if (client === null) throw new Error('the LISTEN connection is not open');
    return await client.query<R>(config);
  }

  /** Whether this connection holds the lock `key` (taken by tryHold, not lost since). */
  holds(key: number): boolean {
    return this.held.has(key);
  }

  private async connect(): Promise<void> {
    const client = this.options.newClient();
    this.client = client;
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      if (this.listening === client) {
        this.listening = null;
        this.held.clear();
      }
      void client.end().catch(() => {});
      if (this.stopped || this.client !== client) return;
      this.client = null;
      this.logger.warn({ err: error, channels: Object.keys(this.options.channels) }, 'LISTEN connection lost; reconnecting');
      this.retry = setTimeout(() => void this.connect(), this.options.retryMs ?? 1_000);
      this.retry.unref();
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('connection ended')));
    client.on('notification', (message) => this.options.channels[message.channel]?.(message.payload ?? ''));
    try {
      await client.connect();
      for (const channel of Object.keys(this.options.channels)) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      if (this.stopped || failed) return;
      this.listening = client;
      this.options.onListening();
    } catch (error) {
      fail(error);
    }
  }
}
