import { startDispatch, type Dispatch } from '../../src/app.js';
import type { DispatchConfigInput } from '../../src/config/config.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';

export const ADMIN_TOKEN = 'test-admin-token-5f1c';

type Section = keyof DispatchConfigInput;

/** Test defaults: ephemeral ports on loopback, an admin token, no NATS unless a test asks. */
export function testConfig(overrides: DispatchConfigInput = {}) {
  const base: DispatchConfigInput = {
    server: { host: '127.0.0.1', port: 0, metrics_port: 0, admin_token: ADMIN_TOKEN, rate_limit_per_minute: 100_000 },
    database: { pool_size: 4 },
    hermes: { url: '' },
    logging: { level: (process.env.DISPATCH_TEST_LOG_LEVEL as 'warn' | undefined) ?? 'silent' },
  };
  const merged: Record<string, unknown> = { ...base };
  for (const [section, values] of Object.entries(overrides)) {
    merged[section] = { ...(base[section as Section] as object | undefined), ...(values as object) };
  }
  return parseConfig(merged);
}

export interface TestDispatch {
  dispatch: Dispatch;
  baseUrl: string;
  opsUrl: string;
  stop(): Promise<void>;
}

export async function startTestDispatch(databaseUrl: string, overrides: DispatchConfigInput = {}): Promise<TestDispatch> {
  const config = testConfig(overrides);
  const dispatch = await startDispatch(config, databaseUrl, createLogger(config.logging));
  return {
    dispatch,
    baseUrl: `http://127.0.0.1:${dispatch.apiPort}`,
    opsUrl: `http://127.0.0.1:${dispatch.opsPort}`,
    stop: () => dispatch.stop(),
  };
}
