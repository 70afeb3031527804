import { Hono } from 'hono';
import type { Schema } from 'hono';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ApiEnv } from './context.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { DispatchError } from '../domain/errors.js';
import { renderError } from './errors.js';
import { identifyCaller, limitBody, limitUnauthenticated, rateLimit, requestContext, type CallerIdentification } from './middleware.js';
import { RateLimiter } from './rate-limit.js';

/** A domain's Hono sub-app and the path it is mounted under. */
export interface MountedRouter {
  path: string;
  router: Hono<ApiEnv, Schema, string>;
}

export interface ApiDeps {
  logger: Logger;
  metrics: Metrics;
  auth: CallerIdentification;
  rateLimitPerMinute: number;
  /** Replicas alive (the heartbeats'): each enforces its share of the rate limit. */
  liveReplicas?: () => number;
  bodyLimitBytes: number;
  /** Every domain router, in mounting order (see src/routes.ts). */
  routers: MountedRouter[];
  /** Called after a request that may have written answered with success (its transaction has committed). */
  afterWrite?: () => void;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The agents' API on port 8600: the shared middleware, the domains' routers, one error renderer. */
export function createApi(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.use('*', requestContext(deps.logger, deps.metrics));
  const { afterWrite } = deps;
  if (afterWrite) {
    app.use('/api/v1/*', async (c, next) => {
      await next();
      if (!READ_METHODS.has(c.req.method) && c.res.status < 400) afterWrite();
    });
  }
  const limiter = () => new RateLimiter(deps.rateLimitPerMinute, Date.now, 100_000, deps.liveReplicas);
  app.use('/api/v1/*', limitBody(deps.bodyLimitBytes), limitUnauthenticated(limiter()), identifyCaller(deps.auth), rateLimit(limiter()));
  for (const { path, router } of deps.routers) app.route(path, router);
  app.notFound((c) => renderError(c, new DispatchError('not_found', `no route ${c.req.method} ${c.req.path}`)));
  app.onError((error, c) => {
    if (error instanceof DispatchError) return renderError(c, error);
    if (isDatabaseUnavailable(error)) {
      deps.logger.warn({ err: error, requestId: c.get('requestId') }, 'database unavailable');
      c.header('Retry-After', '1');
      return renderError(c, new DispatchError('unavailable', 'database unavailable; retry shortly'));
    }
    deps.logger.error({ err: error, requestId: c.get('requestId'), route: c.req.routePath }, 'unhandled error');
    return renderError(c, new DispatchError('internal', 'internal error; the request id is in X-Request-ID'));
  });
  return app;
}
