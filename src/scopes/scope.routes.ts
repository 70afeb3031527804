import { Hono, type MiddlewareHandler } from 'hono';
import type { Db } from '../db/database.js';
import { DispatchError } from '../domain/errors.js';
import { readJsonBody } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import { changeScopeControls } from './scope.queries.js';
import { scopeChangeSchema } from './scope.schemas.js';
import { scopeOverview } from './scope.service.js';

/** A scope from the path, as tasks store it (trimmed, lower case; see task.schemas.ts). */
function scopeName(raw: string): string {
  const scope = raw.trim().toLowerCase();
  if (scope.length === 0 || scope.length > 200) {
    throw new DispatchError('validation_failed', 'invalid scope', [{ field: 'scope', message: '1 to 200 characters' }]);
  }
  return scope;
}

export interface ScopeRouteDeps {
  db: Db;
  admin: MiddlewareHandler<ApiEnv>;
  /** Observers and admins: a scope's depth and controls are the swarm's state, like /stats. */
  reader: MiddlewareHandler<ApiEnv>;
}

/** /api/v1/scopes: each scope's depth, oldest pending age, pause and limits; PATCH steers them. */
export function scopeRoutes({ db, admin, reader }: ScopeRouteDeps) {
  return new Hono<ApiEnv>()
    .get('/', reader, async (c) => c.json({ scopes: await scopeOverview(db) }))
    .get('/:scope', reader, async (c) => {
      const [view] = await scopeOverview(db, scopeName(c.req.param('scope')));
      return c.json(view);
    })
    .patch('/:scope', admin, async (c) => {
      const scope = scopeName(c.req.param('scope'));
      const body = await readJsonBody(c, scopeChangeSchema);
      await changeScopeControls(db, scope, body, c.get('caller').actor);
      const [view] = await scopeOverview(db, scope);
      return c.json(view);
    });
}
