import { z } from 'zod';
import { CREDENTIAL_ROLES } from '../db/columns.js';
import type { CredentialRow } from './credentials.queries.js';

const scopeTag = z.string().trim().min(1).max(200).transform((s) => s.toLowerCase());

/** What an admin asks for when issuing a credential. */
export const newCredentialSchema = z
  .object({
    role: z.enum(CREDENTIAL_ROLES),
    scopes: z.array(scopeTag).max(500).default([]),
    expires_at: z.iso
      .datetime({ offset: true })
      .transform((s) => new Date(s))
      .refine((d) => d.getTime() > Date.now(), 'must be in the future')
      .optional(),
  })
  .strict();

const when = z.iso.datetime().nullable();

/** A credential as admins see it (`Credential` in openapi.json): never its token, only who and what. */
export const credentialJsonSchema = z
  .object({
    id: z.uuid(),
    agent_id: z.string(),
    role: z.enum(CREDENTIAL_ROLES),
    scopes: z.array(z.string()).describe('the scopes the credential is limited to; empty means any scope'),
    created_at: z.iso.datetime(),
    created_by: z.string(),
    expires_at: when,
    revoked_at: when,
    revoked_by: z.string().nullable(),
    last_used_at: when,
  })
  .meta({ id: 'Credential' });
export type CredentialJson = z.infer<typeof credentialJsonSchema>;

/** The answer to issuing a credential: the credential and its token, shown this once. */
export const issuedCredentialJsonSchema = credentialJsonSchema
  .extend({ token: z.string().describe('the bearer token; only its hash is kept, so it is never shown again') })
  .meta({ id: 'IssuedCredential' });

export const credentialToJson = (row: CredentialRow): CredentialJson => ({
  id: row.id,
  agent_id: row.agent_id,
  role: row.role,
  scopes: row.scopes,
  created_at: row.created_at.toISOString(),
  created_by: row.created_by,
  expires_at: row.expires_at?.toISOString() ?? null,
  revoked_at: row.revoked_at?.toISOString() ?? null,
  revoked_by: row.revoked_by,
  last_used_at: row.last_used_at?.toISOString() ?? null,
});
