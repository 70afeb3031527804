import { connect, Events, type ConnectionOptions, type NatsConnection } from 'nats';
import { redactUrl, type Logger } from '../observability/logger.js';
import { BackgroundService } from '../background/service.js';
import { isLoginRefused } from './nats-auth.js';

export interface NatsLinkOptions {
  /** hermes.url: one server URL, or several separated by commas. */
  url: string;
  /** Client name shown in the server's monitoring (the replica id). */
  name: string;
  /** Credentials and TLS (from natsConnectOptions), and the settings that hold them, for errors. */
  login?: { options: Partial<ConnectionOptions>; settings: string };
  logger: Logger;
  /** Called when the connection is up: first connect (`first`) and every reconnect. */
  onUp: (nc: NatsConnection, first: boolean) => void;
  /** Called when an established connection drops. */
  onDown?: () => void;
  /** Backoff between first-connection attempts: doubles from initial up to max. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Wait between reconnect attempts once connected (the client library's own loop). */
  reconnectTimeWaitMs?: number;
  connectTimeoutMs?: number;
  /** Injectable for tests. */
  connectFn?: (options: ConnectionOptions) => Promise<NatsConnection>;
}

/**
 * The replica's one NATS connection. NATS is optional: if the server is down at start the
 * replica runs anyway, warns once, and keeps trying in the background with backoff; once
 * connected, the client library reconnects by itself for ever. Each outage is logged once when
 * it starts and once when it ends.
 */
export class NatsLink extends BackgroundService<boolean> {
  private nc: NatsConnection | null = null;
  private up = false;
  private retryDelayMs: number;
  private warned = false;
  private readonly servers: string[];
  private readonly safeUrl: string;
  private lost: { promise: Promise<never>; reject: (error: Error) => void } = NatsLink.lostSignal();

  constructor(private readonly options: NatsLinkOptions) {
    // Each pass connects unless a connection is open; once connected, the client library
    // reconnects on its own and a pass only looks (a closed connection also cuts the wait short).
    super('nats connection', { intervalMs: options.retryMaxMs ?? 5_000, runAtStart: true }, options.logger);
    this.retryDelayMs = options.retryInitialMs ?? 500;
    this.servers = options.url
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    this.safeUrl = this.servers.map(redactUrl).join(',');
  }

  /** The connection while it is up, else null. */
  get connection(): NatsConnection | null {
    return this.up ? this.nc : null;
  }

  /**
   * Rejects when the current connection drops. A publish in flight when the server goes away would
   * otherwise wait for its full timeout (and the outbox batch with it) before giving up.
   */
  whenLost(): Promise<never> {
    return this.lost.promise;
  }

  private static lostSignal() {
    let reject!: (error: Error) => void;
    const promise = new Promise<never>((_, r) => (reject = r));
    promise.catch(() => undefined);
    return { promise, reject };
  }

  private markLost(): void {
    this.lost.reject(new Error('NATS connection lost'));
    this.lost = NatsLink.lostSignal();
  }

  /** Stops trying; drains an open connection (pending publishes are flushed) and closes it. */
  override async stop(): Promise<void> {
    await super.stop();
    const nc = this.nc;
    const wasUp = this.up;
    this.nc = null;
    this.up = false;
    if (!nc || nc.isClosed()) return;
    if (wasUp && !nc.isDraining()) {
      // Drain waits for the server; if it vanishes meanwhile, close after a bound.
      const bound = new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref());
      await Promise.race([nc.drain().catch(() => undefined), bound]);
    }
    if (!nc.isClosed()) await nc.close().catch(() => undefined);
  }

  /** Connects if no connection is open; true when one is. Failures are logged here, never thrown. */
  async runOnce(): Promise<boolean> {
    if (this.nc && !this.nc.isClosed()) return true;
    const connectFn = this.options.connectFn ?? connect;
    try {
      const nc = await connectFn({
        ...this.options.login?.options,
        servers: this.servers,
        name: this.options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: this.options.reconnectTimeWaitMs ?? 1_000,
        timeout: this.options.connectTimeoutMs ?? 2_000,
        // Notice a server that vanished without closing the socket within ~30 s, not 4 minutes.
        pingInterval: 10_000,
        maxPingOut: 3,
      });
      if (this.stopped) {
        await nc.close();
        return false;
      }
      this.nc = nc;
      this.up = true;
      this.options.logger.info({ url: this.safeUrl }, this.warned ? 'NATS reachable: connected, events flowing' : 'connected to NATS');
      this.warned = false;
      this.retryDelayMs = this.options.retryInitialMs ?? 500;
      this.watch(nc);
      this.options.onUp(nc, true);
      return true;
    } catch (error) {
      if (isLoginRefused(error)) {
        // Retrying soon cannot help; it can once someone fixes the setting or the server's users.
        if (!this.warned) {
          const settings = this.options.login?.settings ?? 'the hermes credentials';
          this.options.logger.error(
            { url: this.safeUrl, code: (error as { code?: string }).code, settings },
            `NATS refused Dispatch's login: check ${settings}; events wait in the outbox meanwhile`,
          );
        }
        this.warned = true;
        this.retryDelayMs = this.options.retryMaxMs ?? 5_000;
      } else if (!this.warned) {
        this.warned = true;
        this.options.logger.warn(
          { url: this.safeUrl, err: error },
          'NATS unreachable: Dispatch runs without it (events wait in the outbox) and keeps trying to connect in the background',
        );
      } else {
        this.options.logger.debug({ url: this.safeUrl, err: error }, 'NATS still unreachable');
      }
      return false;
    }
  }

  /** Connected: look again after the interval. Not: retry with a backoff that doubles up to it. */
  protected override delayAfter(connected: boolean | undefined): number {
    if (connected !== false) return super.delayAfter(connected);
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(delay * 2, this.options.retryMaxMs ?? 5_000);
    return delay;
  }

  private watch(nc: NatsConnection): void {
    let downSince: number | null = null;
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === Events.Disconnect && downSince === null) {
          downSince = Date.now();
          this.up = false;
          this.markLost();
          this.options.logger.warn({ url: this.safeUrl }, 'lost the NATS connection: events wait in the outbox; reconnecting');
          this.options.onDown?.();
        } else if (status.type === Events.Reconnect) {
          this.options.logger.info({ url: this.safeUrl, downMs: downSince === null ? 0 : Date.now() - downSince }, 'reconnected to NATS');
          downSince = null;
          this.up = true;
          this.options.onUp(nc, false);
        }
      }
    })().catch(() => undefined);
    // The library gave up (it should not, with unlimited reconnects; an auth failure can do it):
    // start over with a new connection rather than stay silent for ever.
    void nc.closed().then((error) => {
      if (this.stopped || this.nc !== nc) return;
      this.options.logger.warn({ err: error }, 'NATS connection closed; connecting again');
      this.nc = null;
      this.up = false;
      this.markLost();
      this.options.onDown?.();
      this.nudge();
    });
  }
}
