import type { Db } from './db/database.js';
import type { MountedRouter } from './http/api.js';
import { requireAdmin } from './http/middleware.js';
import type { Metrics } from './observability/metrics.js';
import { agentRoutes } from './agents/agent.routes.js';
import { placementRoutes } from './assignment/placement.routes.js';
import { statsRoutes } from './tasks/stats.routes.js';
import { taskRoutes } from './tasks/task.routes.js';
import type { TaskPolicy } from './tasks/task.service.js';

export interface RouterDeps {
  db: Db;
  metrics: Metrics;
  policy: TaskPolicy;
  adminToken: string;
  defaultMaxConcurrent: number;
}

/** Every router of the agents' API and where it is mounted: the one place routes are wired. */
export function apiRouters(deps: RouterDeps): MountedRouter[] {
  const admin = requireAdmin(deps.adminToken);
  return [
    { path: '/api/v1/tasks', router: taskRoutes(deps) },
    { path: '/api/v1/tasks', router: placementRoutes(deps) },
    { path: '/api/v1/stats', router: statsRoutes({ db: deps.db, admin }) },
    { path: '/api/v1/agents', router: agentRoutes({ ...deps, admin }) },
  ];
}
