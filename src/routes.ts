import type { Db } from './db/database.js';
import type { MountedRouter } from './http/api.js';
import { docsRoutes } from './http/docs.js';
import { docsDeclarations } from './http/docs.openapi.js';
import { requireRole } from './http/middleware.js';
import { buildOpenApiDocument, type ApiDeclarations } from './http/openapi.js';
import { opsDeclarations } from './http/ops.openapi.js';
import type { Metrics } from './observability/metrics.js';
import type { Tracer } from './observability/tracing.js';
import { agentRoutes } from './agents/agent.routes.js';
import { assignmentFeedRoutes } from './agents/assignment-feed.routes.js';
import type { AssignmentHub } from './agents/assignment-hub.js';
import { agentDeclarations } from './agents/agent.openapi.js';
import { assignmentFeedDeclarations } from './agents/assignment-feed.openapi.js';
import { credentialDeclarations } from './auth/credentials.openapi.js';
import { credentialRoutes } from './auth/credentials.routes.js';
import { placementDeclarations } from './assignment/placement.openapi.js';
import { placementRoutes } from './assignment/placement.routes.js';
import { scopeDeclarations } from './scopes/scope.openapi.js';
import { scopeRoutes } from './scopes/scope.routes.js';
import { scheduleDeclarations } from './schedules/schedule.openapi.js';
import { scheduleRoutes } from './schedules/schedule.routes.js';
import { statsDeclarations } from './tasks/stats.openapi.js';
import { statsRoutes } from './tasks/stats.routes.js';
import { taskDeclarations } from './tasks/task.openapi.js';
import { taskRoutes } from './tasks/task.routes.js';
import type { TaskPolicy } from './tasks/task.service.js';
import type { CallerIdentification } from './http/middleware.js';
import type { LiveFeed } from './ui/live-feed.js';
import { dashboardRoutes } from './ui/ui.routes.js';

export interface RouterDeps {
  db: Db;
  metrics: Metrics;
  tracer: Tracer;
  policy: TaskPolicy;
  adminToken: string;
  defaultMaxConcurrent: number;
  /** assignment.aging_ms, for the effective priority the placement explanation shows. */
  agingMs: number;
  /** Warren mode: agents come from Warren, so none registers over REST. */
  agentsFromWarren: boolean;
  /** How the API identifies callers; the dashboard's sign-in checks tokens the same way. */
  auth: CallerIdentification;
  /** The dashboard's shared snapshot of the queue (one per replica). */
  feed: LiveFeed;
  /** This replica's assignment stream hub. */
  assignmentHub: AssignmentHub;
}

/** Every router of the agents' API and where it is mounted: the one place routes are wired. */
export function apiRouters(deps: RouterDeps): MountedRouter[] {
  const admin = requireRole(['admin'], deps.adminToken);
  const reader = requireRole(['observer'], deps.adminToken);
  return [
    { path: '/api/v1/tasks', router: taskRoutes(deps) },
    { path: '/api/v1/tasks', router: placementRoutes(deps) },
    { path: '/api/v1/stats', router: statsRoutes({ db: deps.db, reader }) },
    { path: '/api/v1/scopes', router: scopeRoutes({ db: deps.db, admin, reader }) },
    { path: '/api/v1/schedules', router: scheduleRoutes(deps) },
    { path: '/api/v1/agents', router: credentialRoutes({ db: deps.db, admin }) },
    { path: '/api/v1/agents', router: agentRoutes({ ...deps, admin, reader }) },
    { path: '/api/v1/agents', router: assignmentFeedRoutes({ db: deps.db, hub: deps.assignmentHub }) },
    { path: '/ui', router: dashboardRoutes(deps) },
    { path: '/', router: docsRoutes(openApiJson) },
  ];
}

/**
 * Every route's OpenAPI declaration, one line per router file (its `*.openapi.ts` beside it), the
 * ops listener's included. test/integration/openapi.test.ts checks this list against
 * the routes Hono mounts, both ways; docs/API.md says how to document a new route.
 */
export const apiDeclarations: ApiDeclarations[] = [
  taskDeclarations,
  placementDeclarations,
  statsDeclarations,
  scopeDeclarations,
  scheduleDeclarations,
  credentialDeclarations,
  agentDeclarations,
  assignmentFeedDeclarations,
  docsDeclarations,
  opsDeclarations,
];

/** Mounted routes deliberately left out of openapi.json, and why (the coverage test allows these only). */
export const undocumentedRoutes: { path: RegExp; why: string }[] = [
  { path: /^\/docs(\/|$)/, why: 'the browsable page of the document and its assets: HTML, scripts and styles for people, not API' },
  { path: /^\/ui(\/|$)/, why: 'the operators\' dashboard: HTML pages, its sign-in form, assets and its own live feed, for people in a browser (docs/SECURITY.md), not API' },
];

/** The version of the API description (info.version); kept equal to package.json's version by the coverage test. */
export const API_DESCRIPTION_VERSION = '2.0.0';

let documentJson: string | undefined;

/** openapi.json as served and as committed at the repository root (npm run openapi writes it). */
export function openApiJson(): string {
  documentJson ??= `${JSON.stringify(buildOpenApiDocument(apiDeclarations, API_DESCRIPTION_VERSION), null, 2)}\n`;
  return documentJson;
}
