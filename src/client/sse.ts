/** One server-sent event, as the HTML standard's parser defines it. */
export interface ServerSentEvent {
  event: string;
  data: string;
  /** The last event id seen on this stream so far (what Last-Event-ID should carry). */
  lastEventId: string;
}

/**
 * Parses a text/event-stream body (https://html.spec.whatwg.org/multipage/server-sent-events.html
 * §9.2.6): fields until a blank line, `data` lines joined with newlines, comment lines (keepalives)
 * ignored, an event without data not dispatched; a `retry:` field (the reconnection delay the server
 * asks for, in milliseconds) is passed to `onRetry` as it comes. Only TextDecoder: runs in
 * browsers, Deno and Bun as well as Node.
 */
export async function* parseEventStream(
  body: AsyncIterable<Uint8Array>,
  lastEventId = '',
  onRetry: (ms: number) => void = () => undefined,
): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  const chunks = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      const { value, done } = await chunks.next();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      for (;;) {
        const end = buffer.search(/\r\n|\r|\n/);
        // A lone \r at the end of the buffer may be the first half of \r\n: wait for more.
        if (end < 0 || (end === buffer.length - 1 && buffer[end] === '\r' && !done)) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(buffer.startsWith('\r\n', end) ? end + 2 : end + 1);
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), lastEventId };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id' && !value.includes('\u0000')) lastEventId = value;
        else if (field === 'retry' && /^\d+$/.test(value)) onRetry(Number(value));
      }
      if (done) return;
    }
  } finally {
    await chunks.return?.();
  }
}
