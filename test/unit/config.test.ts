import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, configPathFrom, loadConfig, parseConfig } from '../../src/config/load.js';
import { connectionBudget } from '../../src/db/connections.js';

const dir = mkdtempSync(path.join(tmpdir(), 'dispatch-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
function yamlFile(text: string): string {
  const file = path.join(dir, `config-${files++}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** Loads with a config file named on the command line and the given environment. */
function load(yaml: string | undefined, env: Record<string, string> = {}) {
  const argv = yaml === undefined ? ['node', 'dispatch'] : ['node', 'dispatch', '--config', yamlFile(yaml)];
  return loadConfig(argv, env);
}

/** The ConfigError `fn` throws (failing the test if it throws nothing or something else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it('gives v1’s ports, limits and timings with no file and no environment', () => {
    const config = load(undefined);
    expect(config.server).toMatchObject({ port: 8600, metrics_port: 8601, admin_token: '', rate_limit_per_minute: 120, body_limit_bytes: 1024 * 1024 });
    expect(config.assignment).toMatchObject({
      tick_interval_ms: 5_000,
      wake_timeout_ms: 30_000,
      default_timeout_ms: 300_000,
      max_concurrent_per_agent: 3,
    });
    expect(config.hermes.url).toBe('nats://localhost:4222');
    expect(config.logging).toEqual({ level: 'info', format: 'json' });
    expect(config.database.url).toBe('');
  });
});

describe('YAML file', () => {
  it('reads every section it is given and keeps the defaults of the rest', () => {
    const config = load(`
server:
  port: 9600
  admin_token: from-file
database:
  url: postgres://db.internal/dispatch
assignment:
  max_concurrent_per_agent: 5
logging:
  level: debug
`);
    expect(config.server).toMatchObject({ port: 9600, metrics_port: 8601, admin_token: 'from-file' });
    expect(config.database.url).toBe('postgres://db.internal/dispatch');
    expect(config.assignment).toMatchObject({ max_concurrent_per_agent: 5, tick_interval_ms: 5_000 });
    expect(config.logging.level).toBe('debug');
  });

  it('accepts an empty file', () => {
    expect(load('').server.port).toBe(8600);
  });

  it('is found through --config first, then DISPATCH_CONFIG', () => {
    const fromArg = yamlFile('server: { port: 1111 }');
    const fromEnv = yamlFile('server: { port: 2222 }');
    expect(configPathFrom(['node', 'dispatch', '--config', fromArg], { DISPATCH_CONFIG: fromEnv })).toBe(fromArg);
    expect(configPathFrom(['node', 'dispatch'], { DISPATCH_CONFIG: fromEnv })).toBe(fromEnv);
    expect(configPathFrom(['node', 'dispatch'], {})).toBeUndefined();
    expect(loadConfig(['node', 'dispatch'], { DISPATCH_CONFIG: fromEnv }).server.port).toBe(2222);
    expect(loadConfig(['node', 'dispatch', '--config', fromArg], { DISPATCH_CONFIG: fromEnv }).server.port).toBe(1111);
  });

  it('says which file it could not read', () => {
    const missing = path.join(dir, 'nope.yaml');
    expect(configError(() => loadConfig(['node', 'dispatch', '--config', missing], {})).message).toContain(missing);
    expect(configError(() => loadConfig(['node', 'dispatch', '--config'], {})).message).toContain('--config');
  });

  it('refuses a file that is not a mapping of sections', () => {
    expect(configError(() => load('- server\n- database\n')).message).toContain('mapping');
  });
});

describe('environment overrides', () => {
  it('win over the file, with v1’s variable names', () => {
    const config = load('server:\n  port: 9600\n  admin_token: from-file\n', {
      DISPATCH_PORT: '7600',
      DISPATCH_METRICS_PORT: '7601',
      DISPATCH_ADMIN_TOKEN: 'from-env',
      DISPATCH_DATABASE_URL: 'postgres://env/dispatch',
      DISPATCH_HERMES_URL: 'nats://env:4222',
      DISPATCH_WARREN_URL: 'http://warren:9090',
      DISPATCH_WARREN_TOKEN: 'warren-secret',
      DISPATCH_FORGE_URL: 'http://forge:8083',
      DISPATCH_TICK_INTERVAL_MS: '250',
      DISPATCH_AGING_MS: '0',
      DISPATCH_LOG_LEVEL: 'warn',
    });
    expect(config.server).toMatchObject({ port: 7600, metrics_port: 7601, admin_token: 'from-env' });
    expect(config.database.url).toBe('postgres://env/dispatch');
    expect(config.hermes.url).toBe('nats://env:4222');
    expect(config.warren).toMatchObject({ url: 'http://warren:9090', token: 'warren-secret' });
    expect(config.promptforge.url).toBe('http://forge:8083');
    expect(config.assignment.tick_interval_ms).toBe(250);
    expect(config.assignment.aging_ms).toBe(0);
    expect(config.logging.level).toBe('warn');
  });

  it('size the three database pools and point the session-holding ones at a direct URL', () => {
    const config = load(undefined, {
      DISPATCH_DATABASE_URL: 'postgres://pgbouncer:6432/dispatch',
      DISPATCH_DATABASE_DIRECT_URL: 'postgres://postgres:5432/dispatch',
      DISPATCH_DATABASE_POOL_SIZE: '20',
      DISPATCH_DATABASE_DIRECT_POOL_SIZE: '3',
      DISPATCH_WORKER_POOL_SIZE: '5',
    });
    expect(config.database).toMatchObject({ url: 'postgres://pgbouncer:6432/dispatch', direct_url: 'postgres://postgres:5432/dispatch', pool_size: 20, direct_pool_size: 3 });
    expect(config.worker.pool_size).toBe(5);
    expect(connectionBudget(config)).toEqual({ api: 20, direct: 3, jobs: 5, listen: 1, total: 29 });
    // The sizing rule (docs/OPERATIONS.md): with an API pool of 3, 10 replicas fit under a stock
    // max_connections of 100 (3 reserved for superusers).
    expect(connectionBudget(parseConfig({ database: { pool_size: 3 } })).total * 10).toBeLessThanOrEqual(97);
    // A migration holds its lock on one direct connection and migrates on another.
    expect(configError(() => load(undefined, { DISPATCH_DATABASE_DIRECT_POOL_SIZE: '1' })).message).toContain('direct_pool_size');
  });

  it('ignore empty variables', () => {
    expect(load('server: { port: 9600 }', { DISPATCH_PORT: '' }).server.port).toBe(9600);
  });

  it('name the variable that is not a number', () => {
    const error = configError(() => load(undefined, { DISPATCH_PORT: 'eighty' }));
    expect(error.message).toContain('DISPATCH_PORT');
  });

  it('are validated like the file: an out-of-range port names server.port', () => {
    const error = configError(() => load(undefined, { DISPATCH_PORT: '70000' }));
    expect(error.message).toContain('server.port');
  });
});

describe('validation errors name the bad key', () => {
  it.each([
    ['a port that is not a number', 'server:\n  port: eighty\n', 'server.port'],
    ['a port out of range', 'server:\n  port: 70000\n', 'server.port'],
    ['a negative rate limit', 'server:\n  rate_limit_per_minute: -1\n', 'server.rate_limit_per_minute'],
    ['an unknown log level', 'logging:\n  level: chatty\n', 'logging.level'],
    ['a zero tick interval', 'assignment:\n  tick_interval_ms: 0\n', 'assignment.tick_interval_ms'],
    ['an unknown key', 'server:\n  colour: blue\n', 'server.colour'],
    ['an unknown section', 'servers:\n  port: 1\n', 'servers'],
    ['a section that is not a mapping', 'server: 8600\n', 'server'],
  ])('%s', (_case, yaml, key) => {
    const error = configError(() => load(yaml));
    expect(error.message).toMatch(/^invalid configuration: /);
    expect(error.message).toContain(key);
  });

  it('names every bad key at once', () => {
    const error = configError(() => load('server:\n  port: -1\n  colour: blue\nlogging:\n  level: loud\n'));
    for (const key of ['server.port', 'server.colour', 'logging.level']) expect(error.message).toContain(key);
  });

  it('parseConfig takes the same input a YAML file gives', () => {
    expect(parseConfig({ server: { port: 1234 } }).server.port).toBe(1234);
    expect(configError(() => parseConfig({ server: { port: '1234' } })).message).toContain('server.port');
  });
});

describe('secrets never appear in an error', () => {
  const SECRET = 'sup3r-s3cret-t0ken-value';

  it.each([
    ['a token of the wrong type', `server:\n  admin_token: [${SECRET}]\n`],
    ['a secret beside a bad key', `server:\n  admin_token: ${SECRET}\n  port: nope\n`],
    ['a secret under an unknown key', `warren:\n  tokn: ${SECRET}\n`],
    ['a database URL beside an unknown section', `database:\n  url: postgres://u:${SECRET}@db/x\nbogus: 1\n`],
    ['broken YAML on the secret’s line', `server:\n  admin_token: "${SECRET}\n  port: 1\n`],
    ['broken YAML around the secret', `server:\n  admin_token: ${SECRET}: x\n`],
    ['a tab before the secret', `server:\n\tadmin_token: ${SECRET}\n`],
  ])('%s', (_case, yaml) => {
    const error = configError(() => load(yaml));
    expect(error.message).not.toContain(SECRET);
    expect(error.stack ?? '').not.toContain(SECRET);
  });

  it('points at the line of a YAML syntax error', () => {
    const error = configError(() => load(`server:\n  admin_token: ${SECRET}: x\n`));
    expect(error.message).toMatch(/not valid YAML at line 2/);
  });

  it.each([
    ['DISPATCH_ADMIN_TOKEN', { DISPATCH_ADMIN_TOKEN: SECRET, DISPATCH_PORT: 'x' }],
    ['DISPATCH_WARREN_TOKEN', { DISPATCH_WARREN_TOKEN: SECRET, DISPATCH_LOG_LEVEL: 'loud' }],
    ['DISPATCH_DATABASE_URL', { DISPATCH_DATABASE_URL: `postgres://u:${SECRET}@db/x`, DISPATCH_METRICS_PORT: '99999' }],
  ])('%s set beside a bad variable', (_name, env) => {
    const error = configError(() => load(undefined, env));
    expect(error.message).not.toContain(SECRET);
  });
});
