import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SpanRecord } from './tracing.js';

/**
 * A small OTLP/HTTP (JSON encoding) span exporter: spans are queued in memory and sent in one
 * request per second (or per 512 spans). The queue is bounded: when the collector is slow or
 * down, spans beyond it are dropped and counted, never allowed to grow memory or slow the API.
 * Loaded only when `tracing.otlp_endpoint` is set. The OpenTelemetry SDK would bring ~40
 * packages for the three spans Dispatch makes; this is the wire format alone.
 */

const MAX_QUEUED = 4_096;
const MAX_BATCH = 512;
const FLUSH_MS = 1_000;
const SEND_TIMEOUT_MS = 5_000;

export interface OtlpExporterOptions {
  /** Full URL of the collector's traces endpoint, e.g. http://collector:4318/v1/traces. */
  endpoint: string;
  headers: Record<string, string>;
  resource: Record<string, string>;
  logger: Logger;
}

const nanos = (ms: number) => (BigInt(Math.round(ms * 1_000)) * 1_000n).toString();
const attribute = (key: string, value: string | number) => ({
  key,
  value: typeof value === 'number' ? { intValue: String(value) } : { stringValue: value },
});

export class OtlpExporter {
  private queue: SpanRecord[] = [];
  private dropped = 0;
  private sending: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout;
  private lastFailureLog = 0;

  constructor(private readonly options: OtlpExporterOptions) {
    this.timer = setInterval(() => this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  add(span: SpanRecord): void {
    if (this.queue.length >= MAX_QUEUED) {
      this.dropped++;
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= MAX_BATCH) this.flush();
  }

  /** Sends what is queued (one request at a time, in order). */
  flush(): Promise<void> {
    this.sending = this.sending.then(async () => {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        await this.send(batch);
      }
    });
    return this.sending;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async send(spans: SpanRecord[]): Promise<void> {
    try {
      const response = await fetch(this.options.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.options.headers },
        body: JSON.stringify(this.document(spans)),
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
      });
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`collector answered ${response.status}`);
    } catch (error) {
      this.dropped += spans.length;
      // Once a minute at most; the endpoint is logged, its headers (API keys) never are.
      if (Date.now() - this.lastFailureLog > 60_000) {
        this.lastFailureLog = Date.now();
        const { origin, pathname } = new URL(this.options.endpoint);
        this.options.logger.warn({ err: error, endpoint: origin + pathname, dropped: this.dropped }, 'OTLP export failed; spans dropped');
      }
    }
  }

  private document(spans: SpanRecord[]) {
    return {
      resourceSpans: [
        {
          resource: { attributes: Object.entries(this.options.resource).map(([k, v]) => attribute(k, v)) },
          scopeSpans: [
            {
              scope: { name: 'dispatch' },
              spans: spans.map((span) => ({
                traceId: span.traceId,
                spanId: randomBytes(8).toString('hex'),
                parentSpanId: span.parentSpanId,
                name: span.name,
                kind: span.kind,
                startTimeUnixNano: nanos(span.startMs),
                endTimeUnixNano: nanos(Math.max(span.endMs, span.startMs)),
                attributes: Object.entries(span.attributes).map(([k, v]) => attribute(k, v)),
                status: { code: span.error ? 2 : 1 },
              })),
            },
          ],
        },
      ],
    };
  }
}
