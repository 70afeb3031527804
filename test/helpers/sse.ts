import { request as httpRequest, type IncomingMessage } from 'node:http';
import { waitFor } from './wait.js';

// No vitest imports here: the benchmark (bench/) reads streams with this helper too.

/** One dispatched server-sent event. `id` is the last event id in force when it was dispatched. */
export interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/**
 * The event-stream format (HTML Living Standard, "Parsing an event stream"), for tests: lines
 * end in LF, CR or CRLF, possibly split across chunks; `:` starts a comment; `data` lines join
 * with LF; an `id` holds for later events until another one; a block with no data dispatches
 * nothing (but its `id` still counts); an id containing NUL is ignored.
 */
export class SseParser {
  private buffer = '';
  private pendingCr = false;
  private data: string[] = [];
  private type = '';
  private idBuffer = '';
  /** The last event id (what a client sends back as Last-Event-ID). */
  lastEventId = '';
  comments = 0;
  retryMs: number | undefined;

  /** Feeds text; returns the events completed by it. */
  push(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    let input = text;
    // A CR ending the previous chunk and an LF starting this one are one line end.
    if (this.pendingCr && input.startsWith('\n')) input = input.slice(1);
    this.pendingCr = false;
    this.buffer += input;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      if (match[0] === '\r' && match.index === this.buffer.length - 1) {
        this.pendingCr = true;
      }
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) out.push(event);
    }
    return out;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) {
      this.comments += 1;
      return undefined;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.idBuffer = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }

  private dispatch(): SseEvent | undefined {
    this.lastEventId = this.idBuffer;
    const data = this.data;
    const type = this.type;
    this.data = [];
    this.type = '';
    if (data.length === 0) return undefined;
    return { id: this.lastEventId, event: type || 'message', data: data.join('\n') };
  }
}

export interface OpenStream {
  status: number;
  headers: Headers;
  /** Every event received so far, in order. */
  events: SseEvent[];
  parser: SseParser;
  /** Resolves when the server ends the stream (or the connection breaks). */
  ended: Promise<void>;
  hasEnded(): boolean;
  /** Waits until at least `count` events have arrived. */
  waitForEvents(count: number, timeoutMs?: number): Promise<SseEvent[]>;
  close(): void;
}

/**
 * Opens an event stream and parses it as it arrives; a non-200 answer's body is read as text.
 * node:http with a connection of its own, not fetch: closing destroys the socket at once, as a
 * client that goes away does (an aborted fetch can leave its connection open, which would hold a
 * server's graceful close).
 */
export async function openEventStream(
  url: string,
  headers: Record<string, string> = {},
  /** Called as each event arrives (the benchmark stamps arrival times). */
  onEvent?: (event: SseEvent) => void,
): Promise<OpenStream & { body?: string }> {
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    const request = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false }, resolve);
    request.on('error', reject);
    request.end();
  });
  const responseHeaders = new Headers();
  for (const [key, value] of Object.entries(response.headers)) if (typeof value === 'string') responseHeaders.set(key, value);
  const status = response.statusCode ?? 0;
  const parser = new SseParser();
  const events: SseEvent[] = [];
  let ended = false;
  response.setEncoding('utf8');
  if (status !== 200) {
    let body = '';
    for await (const chunk of response) body += chunk;
    return {
      status,
      headers: responseHeaders,
      body,
      events,
      parser,
      ended: Promise.resolve(),
      hasEnded: () => true,
      waitForEvents: () => Promise.reject(new Error(`stream refused: ${status} ${body}`)),
      close: () => {},
    };
  }
  const done = new Promise<void>((resolve) => {
    const finish = () => {
      ended = true;
      resolve();
    };
    response.on('data', (chunk: string) => {
      for (const event of parser.push(chunk)) {
        events.push(event);
        onEvent?.(event);
      }
    });
    response.on('end', finish);
    response.on('close', finish);
    response.on('error', finish);
  });
  return {
    status,
    headers: responseHeaders,
    events,
    parser,
    ended: done,
    hasEnded: () => ended,
    waitForEvents: (count, timeoutMs = 20_000) =>
      waitFor(() => events.length >= count && events, { timeoutMs, what: `${count} stream events` }),
    close: () => response.destroy(),
  };
}
