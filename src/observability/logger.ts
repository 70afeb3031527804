import { pino, type Logger } from 'pino';
import { Logger as WorkerLogger, type LogLevel } from 'graphile-worker';

export type { Logger };

/**
 * Paths that may carry secrets. pino censors them wherever a log call passes them, so a token
 * or a password in a URL never reaches the log even if someone logs a whole config or request.
 */
const REDACT_PATHS = [
  'config.server.admin_token',
  'config.warren.token',
  'config.promptforge.token',
  'config.database.url',
  'config.hermes.url',
  'config.hermes.user',
  'config.hermes.password',
  'config.hermes.token',
  'config.hermes.nkey_seed',
  'headers.authorization',
  'req.headers.authorization',
  '*.admin_token',
  '*.token',
  '*.password',
  '*.pass',
  '*.nkey_seed',
  'authorization',
];

export function createLogger(options: { level: string }, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'dispatch', pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/**
 * Removes the user name, the password and any query parameters (sslpassword...) from a
 * connection URL. The user name goes too: in `nats://<token>@host` it is the secret.
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username) parsed.username = 'redacted';
    if (parsed.password) parsed.password = 'redacted';
    parsed.search = '';
    return parsed.toString();
  } catch {
    return '[unparseable url]';
  }
}

const WORKER_LEVELS: Record<LogLevel, 'error' | 'warn' | 'info' | 'debug'> = {
  error: 'error',
  warning: 'warn',
  info: 'info',
  debug: 'debug',
};

/** graphile-worker logs through our pino logger, quietly: its info lines become debug. */
export function workerLogger(logger: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const mapped = WORKER_LEVELS[level] === 'info' ? 'debug' : WORKER_LEVELS[level];
    logger[mapped]({ worker: scope, ...(meta ?? {}) }, message);
  });
}
