import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { errorLogLines } from '../helpers/replica-process.js';

/** The replica tests' "no error logged" checks must match what the logger really writes. */
describe('errorLogLines', () => {
  it('finds the error and fatal lines the replica logger writes, and nothing else', async () => {
    let output = '';
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        output += chunk.toString();
        done();
      },
    });
    const logger = createLogger({ level: 'info' }, sink);
    logger.info('fine');
    logger.warn('careful');
    logger.error({ err: new Error('boom') }, 'it broke');
    logger.fatal('gone');
    logger.flush();
    await new Promise((resolve) => setImmediate(resolve));
    const lines = errorLogLines(output);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/it broke/);
    expect(lines[1]).toMatch(/gone/);
  });
});
