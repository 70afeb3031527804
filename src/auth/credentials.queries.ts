import { sql } from 'kysely';
import type { Db } from '../db/database.js';
import type { CredentialRole } from '../db/columns.js';

/** A credential as callers see it: never the token nor its hash. */
export interface CredentialRow {
  id: string;
  agent_id: string;
  role: CredentialRole;
  scopes: string[];
  created_at: Date;
  created_by: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  revoked_by: string | null;
  last_used_at: Date | null;
}

const PUBLIC_COLUMNS = [
  'id',
  'agent_id',
  'role',
  'scopes',
  'created_at',
  'created_by',
  'expires_at',
  'revoked_at',
  'revoked_by',
  'last_used_at',
] as const;

export async function insertCredential(
  db: Db,
  row: { agentId: string; role: CredentialRole; scopes: string[]; tokenSha256: Buffer; createdBy: string; expiresAt: Date | null },
): Promise<CredentialRow> {
  return await db
    .insertInto('dispatch_credentials')
    .values({
      agent_id: row.agentId,
      role: row.role,
      scopes: row.scopes,
      token_sha256: row.tokenSha256,
      created_by: row.createdBy,
      expires_at: row.expiresAt,
    })
    .returning(PUBLIC_COLUMNS)
    .executeTakeFirstOrThrow();
}

/** An agent's credentials, oldest first (on the (agent_id, created_at) index). */
export async function listCredentials(db: Db, agentId: string): Promise<CredentialRow[]> {
  return await db.selectFrom('dispatch_credentials').select(PUBLIC_COLUMNS).where('agent_id', '=', agentId).orderBy('created_at').execute();
}

/** Revokes one of an agent's credentials; undefined when it has no such credential. Idempotent. */
export async function revokeCredential(db: Db, agentId: string, id: string, by: string): Promise<CredentialRow | undefined> {
  return await db
    .updateTable('dispatch_credentials')
    .set({ revoked_at: sql<Date>`coalesce(revoked_at, now())`, revoked_by: sql<string>`coalesce(revoked_by, ${by}::text)` })
    .where('agent_id', '=', agentId)
    .where('id', '=', id)
    .returning(PUBLIC_COLUMNS)
    .executeTakeFirst();
}

/** The credential a token hashes to, if it is neither revoked nor expired (unique index). */
export async function findUsableCredential(db: Db, tokenSha256: Buffer): Promise<CredentialRow | undefined> {
  return await db
    .selectFrom('dispatch_credentials')
    .select(PUBLIC_COLUMNS)
    .where('token_sha256', '=', tokenSha256)
    .where('revoked_at', 'is', null)
    .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', sql<Date>`now()`)]))
    .executeTakeFirst();
}

/** Marks credentials used now (to the minute is enough; callers batch and space these out). */
export async function touchCredentials(db: Db, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await db.updateTable('dispatch_credentials').set({ last_used_at: sql<Date>`now()` }).where('id', 'in', ids).execute();
}
