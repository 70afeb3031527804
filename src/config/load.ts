import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { configSchema, type DispatchConfig } from './config.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type EnvBinding = { env: string; path: [string, string]; type: 'string' | 'int' | 'bool' | 'list' };

/** v1's environment overrides, plus a few new ones; env always wins over the file. */
const ENV_BINDINGS: EnvBinding[] = [
  { env: 'DISPATCH_PORT', path: ['server', 'port'], type: 'int' },
  { env: 'DISPATCH_METRICS_PORT', path: ['server', 'metrics_port'], type: 'int' },
  { env: 'DISPATCH_ADMIN_TOKEN', path: ['server', 'admin_token'], type: 'string' },
  { env: 'DISPATCH_RATE_LIMIT_PER_MINUTE', path: ['server', 'rate_limit_per_minute'], type: 'int' },
  { env: 'DISPATCH_AUTH_MODE', path: ['auth', 'mode'], type: 'string' },
  { env: 'DISPATCH_DATABASE_URL', path: ['database', 'url'], type: 'string' },
  { env: 'DISPATCH_DATABASE_DIRECT_URL', path: ['database', 'direct_url'], type: 'string' },
  { env: 'DISPATCH_DATABASE_POOL_SIZE', path: ['database', 'pool_size'], type: 'int' },
  { env: 'DISPATCH_DATABASE_DIRECT_POOL_SIZE', path: ['database', 'direct_pool_size'], type: 'int' },
  { env: 'DISPATCH_DATABASE_IDLE_TIMEOUT_MS', path: ['database', 'idle_timeout_ms'], type: 'int' },
  { env: 'DISPATCH_WORKER_POOL_SIZE', path: ['worker', 'pool_size'], type: 'int' },
  { env: 'DISPATCH_DATA_DIR', path: ['database', 'embedded_dir'], type: 'string' },
  { env: 'DISPATCH_EMBEDDED_PORT', path: ['database', 'embedded_port'], type: 'int' },
  { env: 'DISPATCH_HERMES_URL', path: ['hermes', 'url'], type: 'string' },
  { env: 'DISPATCH_HERMES_USER', path: ['hermes', 'user'], type: 'string' },
  { env: 'DISPATCH_HERMES_PASSWORD', path: ['hermes', 'password'], type: 'string' },
  { env: 'DISPATCH_HERMES_TOKEN', path: ['hermes', 'token'], type: 'string' },
  { env: 'DISPATCH_HERMES_NKEY_SEED', path: ['hermes', 'nkey_seed'], type: 'string' },
  { env: 'DISPATCH_HERMES_CREDS_FILE', path: ['hermes', 'creds_file'], type: 'string' },
  { env: 'DISPATCH_HERMES_TLS_CA_FILE', path: ['hermes', 'tls_ca_file'], type: 'string' },
  { env: 'DISPATCH_HERMES_TLS_CERT_FILE', path: ['hermes', 'tls_cert_file'], type: 'string' },
  { env: 'DISPATCH_HERMES_TLS_KEY_FILE', path: ['hermes', 'tls_key_file'], type: 'string' },
  { env: 'DISPATCH_HERMES_ACCEPT_REQUESTS', path: ['hermes', 'accept_requests'], type: 'bool' },
  { env: 'DISPATCH_HERMES_REQUESTERS', path: ['hermes', 'requesters'], type: 'list' },
  { env: 'DISPATCH_WARREN_URL', path: ['warren', 'url'], type: 'string' },
  { env: 'DISPATCH_WARREN_TOKEN', path: ['warren', 'token'], type: 'string' },
  { env: 'DISPATCH_FORGE_URL', path: ['promptforge', 'url'], type: 'string' },
  { env: 'DISPATCH_FORGE_TOKEN', path: ['promptforge', 'token'], type: 'string' },
  { env: 'DISPATCH_TICK_INTERVAL_MS', path: ['assignment', 'tick_interval_ms'], type: 'int' },
  { env: 'DISPATCH_AGING_MS', path: ['assignment', 'aging_ms'], type: 'int' },
  { env: 'DISPATCH_KEEP_FINISHED_MS', path: ['retention', 'keep_finished_ms'], type: 'int' },
  { env: 'DISPATCH_OTLP_ENDPOINT', path: ['tracing', 'otlp_endpoint'], type: 'string' },
  { env: 'DISPATCH_OTLP_HEADERS', path: ['tracing', 'otlp_headers'], type: 'list' },
  { env: 'DISPATCH_LOG_LEVEL', path: ['logging', 'level'], type: 'string' },
  { env: 'DISPATCH_LOG_FORMAT', path: ['logging', 'format'], type: 'string' },
];

function readYamlFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    // The parser's message quotes the offending lines, which may hold a token: give only where.
    const { code, linePos } = error as { code?: string; linePos?: [{ line: number; col: number }] };
    const where = linePos ? ` at line ${linePos[0].line}, column ${linePos[0].col}` : '';
    throw new ConfigError(`config file ${path} is not valid YAML${where} (${code ?? 'parse error'})`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a mapping of sections`);
  }
  return parsed as Record<string, unknown>;
}

function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const binding of ENV_BINDINGS) {
    const value = env[binding.env];
    if (value === undefined || value === '') continue;
    let typed: string | number | boolean | string[] = value;
    if (binding.type === 'int') {
      if (!/^-?\d+$/.test(value.trim())) {
        throw new ConfigError(`${binding.env} must be a whole number, got "${value}"`);
      }
      typed = Number(value);
    } else if (binding.type === 'bool') {
      if (!/^(true|false)$/i.test(value.trim())) throw new ConfigError(`${binding.env} must be true or false, got "${value}"`);
      typed = value.trim().toLowerCase() === 'true';
    } else if (binding.type === 'list') {
      typed = value.split(',').map((item) => item.trim()).filter(Boolean);
    }
    const [section, key] = binding.path;
    const existing = raw[section];
    const target = typeof existing === 'object' && existing !== null ? (existing as Record<string, unknown>) : {};
    target[key] = typed;
    raw[section] = target;
  }
}

/** Where the config file is: `--config <path>` first, then DISPATCH_CONFIG. */
export function configPathFrom(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  const index = argv.indexOf('--config');
  if (index >= 0) {
    const path = argv[index + 1];
    if (!path) throw new ConfigError('--config needs a file path');
    return path;
  }
  return env.DISPATCH_CONFIG || undefined;
}

/** Validate a raw config object; the error names the first bad key by its dotted path. */
export function parseConfig(raw: unknown): DispatchConfig {
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k].join('.')) : [];
    const where = keys.length > 0 ? keys.join(', ') : issue.path.join('.') || '(root)';
    return `${where}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration: ${messages.join('; ')}`);
}

/** Load YAML (if any), apply env overrides, validate. */
export function loadConfig(argv: readonly string[] = process.argv, env: NodeJS.ProcessEnv = process.env): DispatchConfig {
  const path = configPathFrom(argv, env);
  const raw = path ? readYamlFile(path) : {};
  applyEnv(raw, env);
  return parseConfig(raw);
}
