import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { agentIdSchema } from '../domain/caller.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ApiEnv } from './context.js';
import { DispatchError } from '../domain/errors.js';
import type { RateLimiter } from './rate-limit.js';

/** Request id (from X-Request-ID when sane), request metrics, and a log line for slow or failed calls. */
export function requestContext(logger: Logger, metrics: Metrics): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const given = c.req.header('x-request-id');
    const requestId = given && /^[\w.:-]{1,100}$/.test(given) ? given : randomUUID();
    c.set('requestId', requestId);
    c.header('X-Request-ID', requestId);
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const route = c.req.routePath || 'unmatched';
    metrics.httpRequests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.httpDuration.observe({ method: c.req.method, route }, seconds);
    if (c.res.status >= 500) {
      logger.error({ requestId, method: c.req.method, route, status: c.res.status }, 'request failed');
    } else if (logger.isLevelEnabled('debug')) {
      logger.debug({ requestId, method: c.req.method, route, status: c.res.status, ms: seconds * 1000 }, 'request');
    }
  };
}

/**
 * Bodies over the limit are refused before they are read whole. A declared Content-Length is
 * checked from the header alone (Node's parser never delivers more bytes than it declares); only
 * a body without one (chunked) goes through Hono's counting reader. Not touching the request body
 * here matters: Hono's middleware looks at `c.req.raw.body`, which makes @hono/node-server build
 * a full web Request (streams, AbortSignal) for every call, GETs included; left alone, the body is
 * read straight from the socket when the handler asks for it.
 */
export function limitBody(maxSize: number): MiddlewareHandler<ApiEnv> {
  const tooLarge = (c: Context) => {
    // The rest of the body is left unread, so this connection cannot carry another request:
    // say so, or a keep-alive client reuses it and its next request dies on a closed socket.
    c.header('Connection', 'close');
    throw new DispatchError('payload_too_large', `request body exceeds ${maxSize} bytes`, [
      { field: '(body)', message: `at most ${maxSize} bytes` },
    ]);
  };
  const counting = bodyLimit({ maxSize, onError: tooLarge });
  return async (c, next) => {
    const length = c.req.header('content-length');
    if (length !== undefined && c.req.header('transfer-encoding') === undefined && /^\d+$/.test(length)) {
      if (Number(length) > maxSize) tooLarge(c);
      return await next();
    }
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return await next();
    return await counting(c, next);
  };
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Constant-time comparison (hashing first makes the lengths equal). */
export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

/** Every /api/v1 call names its agent; an admin additionally presents the admin token. */
export function identifyCaller(adminToken: string): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const agent = c.req.header('x-agent-id');
    if (agent === undefined || agent === '') {
      throw new DispatchError('unauthorized', 'X-Agent-ID header is required', [{ field: 'X-Agent-ID', message: 'required' }]);
    }
    if (!agentIdSchema.safeParse(agent).success) {
      throw new DispatchError('unauthorized', 'X-Agent-ID is not a valid agent id', [
        { field: 'X-Agent-ID', message: 'printable ASCII without spaces, at most 200 characters' },
      ]);
    }
    const token = bearerToken(c.req.header('authorization'));
    const admin = adminToken !== '' && token !== undefined && tokenMatches(token, adminToken);
    c.set('caller', { agent, admin });
    await next();
  };
}

/** Admin routes fail closed: with no admin token configured nobody is an admin. */
export function requireAdmin(adminToken: string): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (adminToken === '') {
      throw new DispatchError('forbidden', 'admin API is disabled: no admin token is configured (server.admin_token)');
    }
    if (!c.get('caller').admin) {
      throw new DispatchError('unauthorized', 'admin token required: Authorization: Bearer <token>', [
        { field: 'Authorization', message: 'missing or wrong admin token' },
      ]);
    }
    await next();
  };
}

export function rateLimit(limiter: RateLimiter): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const waitSeconds = limiter.take(c.get('caller').agent);
    if (waitSeconds > 0) {
      c.header('Retry-After', String(waitSeconds));
      throw new DispatchError('rate_limited', `rate limit exceeded; retry in ${waitSeconds} s`);
    }
    await next();
  };
}
