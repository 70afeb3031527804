import { Kysely, PostgresDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { DB } from '../../src/db/generated/database.js';
import * as q from '../../src/auth/credentials.queries.js';
import { CredentialVerifier, issueCredential, tokenSha256 } from '../../src/auth/credentials.service.js';
import { useTestDatabase } from '../helpers/database.js';

/** The credential store: tokens kept only as hashes, lookups cached briefly, revocation and expiry. */
const database = useTestDatabase();

describe('credentials', () => {
  it('keeps only the hash of a token, and a token names its credential', async () => {
    const db = database().handle.db;
    const { credential, token } = await issueCredential(db, { agentId: 'coder-1', role: 'worker', scopes: ['code'], expiresAt: null }, 'bootstrap');
    expect(token).toMatch(/^dsp_[\w-]{43}$/);
    const stored = await db.selectFrom('dispatch_credentials').selectAll().where('id', '=', credential.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(token.slice(4));
    expect(Buffer.compare(stored.token_sha256, tokenSha256(token))).toBe(0);
    const verifier = new CredentialVerifier(db);
    await expect(verifier.verify(token)).resolves.toMatchObject({ id: credential.id, agent_id: 'coder-1', role: 'worker', scopes: ['code'] });
    await expect(verifier.verify(`${token}x`)).resolves.toBeUndefined();
  });

  it('refuses a revoked token once the cached lookup is older than the cache window', async () => {
    const db = database().handle.db;
    const { credential, token } = await issueCredential(db, { agentId: 'planner', role: 'requester', scopes: [], expiresAt: null }, 'bootstrap');
    let now = Date.now();
    const verifier = new CredentialVerifier(db, { cacheMs: 500, now: () => now });
    await expect(verifier.verify(token)).resolves.toBeDefined();
    const revoked = await q.revokeCredential(db, 'planner', credential.id, 'admin-credential');
    expect(revoked).toMatchObject({ revoked_by: 'admin-credential' });
    expect(revoked?.revoked_at).toBeInstanceOf(Date);
    now += 499;
    await expect(verifier.verify(token)).resolves.toBeDefined();
    now += 2;
    await expect(verifier.verify(token)).resolves.toBeUndefined();
    // Revoking again changes nothing: the first revocation stays the record.
    await expect(q.revokeCredential(db, 'planner', credential.id, 'someone-else')).resolves.toMatchObject({ revoked_by: 'admin-credential' });
    await expect(q.revokeCredential(db, 'not-planner', credential.id, 'x')).resolves.toBeUndefined();
  });

  it('looks a token up once when many calls carry it at the same moment', async () => {
    const { db, pool } = database().handle;
    const { credential, token } = await issueCredential(db, { agentId: 'busy-agent', role: 'worker', scopes: [], expiresAt: null }, 'bootstrap');
    let lookups = 0;
    const counted = new Kysely<DB>({
      dialect: new PostgresDialect({ pool }),
      log: (event) => {
        if (event.query.sql.includes('dispatch_credentials') && event.query.sql.trimStart().startsWith('select')) lookups += 1;
      },
    });
    const verifier = new CredentialVerifier(counted, { cacheMs: 60_000 });
    const answers = await Promise.all(Array.from({ length: 50 }, () => verifier.verify(token)));
    expect(answers.map((a) => a?.id)).toEqual(Array(50).fill(credential.id));
    expect(lookups).toBe(1);
  });

  it('refuses an expired token, even from the cache', async () => {
    const db = database().handle.db;
    let now = Date.now();
    const { token } = await issueCredential(db, { agentId: 'observer-1', role: 'observer', scopes: [], expiresAt: new Date(now + 60_000) }, 'bootstrap');
    const verifier = new CredentialVerifier(db, { cacheMs: 3_600_000, now: () => now });
    await expect(verifier.verify(token)).resolves.toBeDefined();
    now += 60_001;
    await expect(verifier.verify(token)).resolves.toBeUndefined();
    const expired = await issueCredential(db, { agentId: 'observer-1', role: 'observer', scopes: [], expiresAt: new Date(Date.now() - 1) }, 'bootstrap');
    await expect(new CredentialVerifier(db).verify(expired.token)).resolves.toBeUndefined();
  });

  it('lists an agent\'s credentials oldest first, without tokens, and records when each was last used', async () => {
    const db = database().handle.db;
    const first = await issueCredential(db, { agentId: 'lister', role: 'worker', scopes: [], expiresAt: null }, 'bootstrap');
    const second = await issueCredential(db, { agentId: 'lister', role: 'requester', scopes: ['review'], expiresAt: null }, 'bootstrap');
    await new CredentialVerifier(db).verify(second.token);
    const listed = await q.listCredentials(db, 'lister');
    expect(listed.map((c) => c.id)).toEqual([first.credential.id, second.credential.id]);
    expect(JSON.stringify(listed)).not.toContain('token');
    await expect.poll(async () => (await q.listCredentials(db, 'lister'))[1]?.last_used_at).toBeInstanceOf(Date);
    expect((await q.listCredentials(db, 'lister'))[0]?.last_used_at).toBeNull();
  });
});
