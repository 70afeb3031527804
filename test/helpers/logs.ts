import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger.js';

/** Log lines as parsed objects, plus the raw text to search for secrets. */
export function captureLogs() {
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      const text = chunk.toString();
      raw += text;
      for (const line of text.split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return {
    logger: createLogger({ level: 'trace' }, stream),
    lines,
    raw: () => raw,
    at: (level: string) => lines.filter((line) => line.level === level),
  };
}
