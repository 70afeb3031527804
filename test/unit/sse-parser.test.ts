import { describe, expect, it } from 'vitest';
import { SseParser } from '../helpers/sse.js';

/** The test helper's event-stream parser follows the standard's rules that our streams rely on. */
describe('SseParser', () => {
  it('dispatches on a blank line, keeps the id in force and joins data lines', () => {
    const parser = new SseParser();
    const events = parser.push('id: 7\nevent: assigned\ndata: {"a":1}\n\ndata: one\ndata: two\n\n');
    expect(events).toEqual([
      { id: '7', event: 'assigned', data: '{"a":1}' },
      { id: '7', event: 'message', data: 'one\ntwo' },
    ]);
    expect(parser.lastEventId).toBe('7');
  });

  it('reassembles lines split across chunks, with CRLF split between them', () => {
    const parser = new SseParser();
    const text = ': hello\r\nretry: 1000\r\nid: 12\r\nevent: cancelled\r\ndata: {"id":"x"}\r\n\r\n';
    const events = [...text].flatMap((ch) => parser.push(ch));
    expect(events).toEqual([{ id: '12', event: 'cancelled', data: '{"id":"x"}' }]);
    expect(parser.comments).toBe(1);
    expect(parser.retryMs).toBe(1000);
  });

  it('counts an id of a block without data, and ignores comments and unknown fields', () => {
    const parser = new SseParser();
    expect(parser.push(': keepalive\n\nid: 40\n\nfoo: bar\n')).toEqual([]);
    expect(parser.lastEventId).toBe('40');
    expect(parser.push('data\n\n')).toEqual([{ id: '40', event: 'message', data: '' }]);
  });
});
