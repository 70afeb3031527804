import { type Kysely, sql } from 'kysely';

/**
 * Credentials: who a caller is, proven by a bearer token instead of taken from X-Agent-ID.
 *
 * An admin issues a credential to an agent name with one role and, optionally, the scopes it is
 * limited to. The token is shown once; only its SHA-256 is kept (tokens are 256 random bits, so
 * a fast hash is enough: nothing to brute-force). Every replica reads the same table, so a
 * revocation is seen everywhere at once (replicas cache a lookup for under a second). Rows are
 * never deleted by Dispatch: a revoked or expired credential stays as the record of who did what
 * (drained_by, cancelled_by name the credential).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE TABLE dispatch_credentials (
  id            uuid PRIMARY KEY DEFAULT dispatch_uuid_v7(),
  agent_id      text NOT NULL,
  role          text NOT NULL CONSTRAINT dispatch_credentials_role_check CHECK (role IN ('worker', 'requester', 'observer', 'admin')),
  scopes        text[] NOT NULL DEFAULT '{}',
  token_sha256  bytea NOT NULL CONSTRAINT dispatch_credentials_token_unique UNIQUE,
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text NOT NULL,
  expires_at    timestamptz,
  revoked_at    timestamptz,
  revoked_by    text,
  last_used_at  timestamptz
);
CREATE INDEX dispatch_credentials_agent ON dispatch_credentials (agent_id, created_at);

COMMENT ON TABLE dispatch_credentials IS 'Bearer credentials issued by an admin (POST /api/v1/agents/:id/credentials). Only the token''s SHA-256 is stored; the token itself was shown once, to whoever issued it.';
COMMENT ON COLUMN dispatch_credentials.id IS 'Credential id (UUID v7): names the credential in audit fields such as cancelled_by and drained_by, and in DELETE .../credentials/:id.';
COMMENT ON COLUMN dispatch_credentials.agent_id IS 'The agent name a call with this token acts as; an X-Agent-ID sent with it must be this name.';
COMMENT ON COLUMN dispatch_credentials.role IS 'worker: registers and heartbeats itself, works on its own attempts. requester: creates tasks, reads and cancels its own. observer: reads everything, changes nothing. admin: everything.';
COMMENT ON COLUMN dispatch_credentials.scopes IS 'Empty: any scope. Otherwise a worker registers only these capabilities (and is given only tasks of these scopes), and a requester creates tasks only in these scopes.';
COMMENT ON COLUMN dispatch_credentials.token_sha256 IS 'SHA-256 of the bearer token; the lookup key for every authenticated call.';
COMMENT ON COLUMN dispatch_credentials.created_at IS 'When it was issued.';
COMMENT ON COLUMN dispatch_credentials.created_by IS 'Who issued it: a credential id, or "bootstrap" for the DISPATCH_ADMIN_TOKEN admin.';
COMMENT ON COLUMN dispatch_credentials.expires_at IS 'Refused from this time on; NULL never expires.';
COMMENT ON COLUMN dispatch_credentials.revoked_at IS 'Refused from this time on (DELETE .../credentials/:id); the row stays as the record.';
COMMENT ON COLUMN dispatch_credentials.revoked_by IS 'Who revoked it: a credential id, or "bootstrap".';
COMMENT ON COLUMN dispatch_credentials.last_used_at IS 'Last call made with it, to the minute (written at most once a minute per replica, not on every call).';
`,
    )
    .execute(db);
}
