import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { Db } from '../db/database.js';
import { agentIdSchema } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';
import { readJsonBody } from '../http/body.js';
import type { ApiEnv } from '../http/context.js';
import * as q from './credentials.queries.js';
import { credentialToJson, newCredentialSchema } from './credentials.schemas.js';
import { issueCredential } from './credentials.service.js';

function agentParam(raw: string): string {
  if (!agentIdSchema.safeParse(raw).success) {
    throw new DispatchError('validation_failed', 'invalid agent id', [{ field: 'id', message: 'printable ASCII without spaces, at most 200 characters' }]);
  }
  return raw;
}

/** /api/v1/agents/:id/credentials: admins issue, list and revoke credentials. */
export function credentialRoutes({ db, admin }: { db: Db; admin: MiddlewareHandler<ApiEnv> }) {
  return new Hono<ApiEnv>()
    .post('/:id/credentials', admin, async (c) => {
      const agentId = agentParam(c.req.param('id'));
      const body = await readJsonBody(c, newCredentialSchema);
      const { credential, token } = await issueCredential(
        db,
        { agentId, role: body.role, scopes: [...new Set(body.scopes)], expiresAt: body.expires_at ?? null },
        c.get('caller').actor,
      );
      // The token is shown this once; only its hash is kept.
      c.header('Cache-Control', 'no-store');
      return c.json({ ...credentialToJson(credential), token }, 201);
    })
    .get('/:id/credentials', admin, async (c) => {
      return c.json({ credentials: (await q.listCredentials(db, agentParam(c.req.param('id')))).map(credentialToJson) });
    })
    .delete('/:id/credentials/:credential_id', admin, async (c) => {
      const agentId = agentParam(c.req.param('id'));
      const id = c.req.param('credential_id');
      const revoked = z.uuid().safeParse(id).success ? await q.revokeCredential(db, agentId, id, c.get('caller').actor) : undefined;
      if (!revoked) throw new DispatchError('not_found', `agent ${agentId} has no credential ${id}`);
      return c.json(credentialToJson(revoked));
    });
}
