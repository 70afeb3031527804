import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { getConnInfo } from '@hono/node-server/conninfo';
import { agentIdSchema, hasRole, type Caller, type Role } from '../domain/caller.js';
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

/** The configured admin token's digest, hashed once rather than on every call. */
const expectedDigests = new Map<string, Buffer>();

/** Constant-time comparison (hashing first makes the lengths equal). */
function tokenMatches(presented: string, expected: string): boolean {
  let expectedDigest = expectedDigests.get(expected);
  if (!expectedDigest) expectedDigests.set(expected, (expectedDigest = digest(expected)));
  return timingSafeEqual(digest(presented), expectedDigest);
}

function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

export type AuthMode = 'token' | 'header';

export interface CallerIdentification {
  mode: AuthMode;
  /** server.admin_token: the bootstrap admin; empty, none. */
  adminToken: string;
  /** Looks a bearer token up among the issued credentials (src/auth). */
  verify: (token: string) => Promise<VerifiedCredential | undefined>;
}

/** What the API needs of a credential (a row of dispatch_credentials). */
export interface VerifiedCredential {
  id: string;
  agent_id: string;
  role: Role;
  scopes: string[];
}

function validAgentHeader(agent: string): string {
  if (!agentIdSchema.safeParse(agent).success) {
    throw new DispatchError('unauthorized', 'X-Agent-ID is not a valid agent id', [
      { field: 'X-Agent-ID', message: 'printable ASCII without spaces, at most 200 characters' },
    ]);
  }
  return agent;
}

const HEADER_MODE_ROLES: ReadonlySet<Role> = new Set(['worker', 'requester']);

/**
 * The caller a bearer token proves: the admin token (server.admin_token) is the bootstrap admin; a
 * credential names its agent, role and scopes, and an X-Agent-ID sent with it (`claimed`) must be
 * that agent (403 otherwise). Undefined when the token is no credential in header mode, where the
 * call is then taken at its X-Agent-ID word. Shared by the API and the dashboard's sign-in.
 */
export async function callerForToken(options: CallerIdentification, token: string, claimed: string | undefined): Promise<Caller | undefined> {
  if (options.adminToken !== '' && tokenMatches(token, options.adminToken)) {
    // Header mode records the admin's X-Agent-ID, as v1 did; token mode the bootstrap credential.
    const actor = options.mode === 'header' ? (claimed ?? 'admin') : 'bootstrap';
    return { agent: claimed ?? 'admin', admin: true, roles: new Set(['admin']), readsAllTasks: true, scopes: [], actor };
  }
  if (options.mode === 'header' && !token.startsWith('dsp_')) return undefined;
  const credential = await options.verify(token);
  if (!credential) {
    const message = 'the bearer token is not a valid credential (unknown, revoked or expired)';
    throw new DispatchError('unauthorized', message, [{ field: 'Authorization', message }]);
  }
  if (claimed !== undefined && claimed !== credential.agent_id) {
    throw new DispatchError('forbidden', `X-Agent-ID ${claimed} is not the agent this credential belongs to`, [
      { field: 'X-Agent-ID', message: 'must name the credential\'s agent, or be left out' },
    ]);
  }
  const admin = credential.role === 'admin';
  const readsAllTasks = admin || credential.role === 'observer' || options.mode === 'header';
  return { agent: credential.agent_id, admin, roles: new Set([credential.role]), readsAllTasks, scopes: credential.scopes, actor: credential.id };
}

/**
 * Who the caller is (see callerForToken). In header mode a call without a credential is taken at
 * its X-Agent-ID word, as v1 did; in token mode it is refused.
 */
export function identifyCaller(options: CallerIdentification): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const header = c.req.header('x-agent-id');
    const claimed = header === undefined || header === '' ? undefined : validAgentHeader(header);
    const token = bearerToken(c.req.header('authorization'));
    if (options.mode === 'header' && claimed === undefined) {
      // v1: every call names its agent, an admin's too.
      throw new DispatchError('unauthorized', 'X-Agent-ID header is required', [{ field: 'X-Agent-ID', message: 'required' }]);
    }
    let caller = token === undefined ? undefined : await callerForToken(options, token, claimed);
    if (caller === undefined) {
      if (options.mode === 'token') {
        const message = 'a credential is required: Authorization: Bearer <token>';
        throw new DispatchError('unauthorized', message, [{ field: 'Authorization', message }]);
      }
      caller = { agent: claimed!, admin: false, roles: HEADER_MODE_ROLES, readsAllTasks: true, scopes: [], actor: claimed! };
    }
    c.set('caller', caller);
    await next();
  };
}

/**
 * Routes for some roles only; admins pass every such check. Fails closed: in header mode with no
 * admin token configured, nobody is an admin.
 */
export function requireRole(roles: Role[], adminToken: string): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const caller = c.get('caller');
    if (!hasRole(caller, ...roles)) {
      if (caller.roles === HEADER_MODE_ROLES) {
        if (adminToken === '') throw new DispatchError('forbidden', 'admin API is disabled: no admin token is configured (server.admin_token)');
        throw new DispatchError('unauthorized', 'admin token required: Authorization: Bearer <token>', [
          { field: 'Authorization', message: 'missing or wrong admin token' },
        ]);
      }
      throw new DispatchError('forbidden', `this needs a credential with the role ${roles.join(' or ')}`);
    }
    await next();
  };
}

function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * The per-caller limit. The key is the proven identity (the credential in token mode), so nobody
 * can spend another caller's budget; an agent's own registration heartbeats have a bucket of their
 * own, so a burst of its other calls never gets it declared stopped.
 */
export function rateLimit(limiter: RateLimiter): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const caller = c.get('caller');
    const registering = c.req.method === 'PUT' ? /^\/api\/v1\/agents\/([^/]+)$/.exec(c.req.path) : null;
    const heartbeat = registering !== null && safeDecode(registering[1]!) === caller.agent;
    const waitSeconds = limiter.take(heartbeat ? `${caller.actor}\u0000heartbeat` : caller.actor);
    if (waitSeconds > 0) {
      c.header('Retry-After', String(waitSeconds));
      throw new DispatchError('rate_limited', `rate limit exceeded; retry in ${waitSeconds} s`);
    }
    await next();
  };
}

/** The peer's address (a load balancer's, behind one); "unknown" outside a Node server (tests' app.request). */
function clientAddress(c: Context<ApiEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Calls that fail authentication spend a budget of their client address; once it is spent, the
 * address's failures are answered 429 with Retry-After instead of 401, so a misconfigured client
 * backs off and a flood of bad tokens shows as such. A call that authenticates is never refused
 * here, whatever its address: behind a load balancer every caller shares the balancer's address,
 * and one caller's bad tokens must not lock the others out.
 */
export function limitUnauthenticated(limiter: RateLimiter): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    await next();
    // Hono has already rendered a downstream error; it is left on the context.
    if (!(c.error instanceof DispatchError) || c.error.code !== 'unauthorized') return;
    const waitSeconds = limiter.take(`address\u0000${clientAddress(c)}`);
    if (waitSeconds > 0) {
      c.header('Retry-After', String(waitSeconds));
      // Rendered by the app's error handler in place of the 401.
      throw new DispatchError('rate_limited', `too many unauthenticated calls from this address; retry in ${waitSeconds} s`);
    }
  };
}
