import { Hono } from 'hono';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { TaskPolicy } from '../tasks/task.service.js';
import { taskRoutes } from '../tasks/task.routes.js';
import { readQueueStats } from '../tasks/stats.js';
import type { ApiEnv } from './context.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { DispatchError, renderError } from './errors.js';
import { identifyCaller, limitBody, rateLimit, requestContext, requireAdmin } from './middleware.js';
import { RateLimiter } from './rate-limit.js';

export interface ApiDeps {
  db: Db;
  logger: Logger;
  metrics: Metrics;
  policy: TaskPolicy;
  adminToken: string;
  rateLimitPerMinute: number;
  bodyLimitBytes: number;
  /** Extra routers mounted under /api/v1 (agents, placement), built by their own domains. */
  mount?: (api: Hono<ApiEnv>, guards: { admin: ReturnType<typeof requireAdmin> }) => void;
}

/** The agents' API on port 8600. */
export function createApi(deps: ApiDeps): Hono<ApiEnv> {
  const admin = requireAdmin(deps.adminToken);
  const app = new Hono<ApiEnv>();
  app.use('*', requestContext(deps.logger, deps.metrics));
  app.use('/api/v1/*', limitBody(deps.bodyLimitBytes), identifyCaller(deps.adminToken), rateLimit(new RateLimiter(deps.rateLimitPerMinute)));
  app.route('/api/v1/tasks', taskRoutes(deps));
  app.get('/api/v1/stats', admin, async (c) => c.json(await readQueueStats(deps.db)));
  deps.mount?.(app, { admin });
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
