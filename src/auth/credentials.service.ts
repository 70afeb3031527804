import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db/database.js';
import type { CredentialRole } from '../db/columns.js';
import * as q from './credentials.queries.js';

export type { CredentialRow } from './credentials.queries.js';

/** Tokens say what they are (secret scanners and people both recognise the prefix). */
const TOKEN_PREFIX = 'dsp_';

export const tokenSha256 = (token: string): Buffer => createHash('sha256').update(token).digest();

export interface NewCredential {
  agentId: string;
  role: CredentialRole;
  scopes: string[];
  expiresAt: Date | null;
}

/** Makes a credential; the token is returned here once and never again. */
export async function issueCredential(db: Db, input: NewCredential, by: string): Promise<{ credential: q.CredentialRow; token: string }> {
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
  const credential = await q.insertCredential(db, { ...input, tokenSha256: tokenSha256(token), createdBy: by });
  return { credential, token };
}

export interface CredentialVerifierOptions {
  /** How long a lookup is trusted; a revocation takes at most this long to reach this replica. */
  cacheMs?: number;
  /** last_used_at is written at most this often per credential and replica. */
  touchEveryMs?: number;
  maxCached?: number;
  now?: () => number;
}

/**
 * Turns a bearer token into the credential it names, or undefined. One indexed lookup per token
 * per `cacheMs` per replica; unknown tokens are remembered too, so a flood of wrong tokens costs
 * the database no more than a flood of right ones.
 */
export class CredentialVerifier {
  private readonly cache = new Map<string, { credential: q.CredentialRow | undefined; until: number }>();
  /** Lookups under way: the calls that find the same token's entry stale meanwhile wait for this one. */
  private readonly lookups = new Map<string, Promise<q.CredentialRow | undefined>>();
  private readonly touchedAt = new Map<string, number>();
  private readonly cacheMs: number;
  private readonly touchEveryMs: number;
  private readonly maxCached: number;
  private readonly now: () => number;

  constructor(
    private readonly db: Db,
    options: CredentialVerifierOptions = {},
  ) {
    this.cacheMs = options.cacheMs ?? 500;
    this.touchEveryMs = options.touchEveryMs ?? 60_000;
    this.maxCached = options.maxCached ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  async verify(token: string): Promise<q.CredentialRow | undefined> {
    const hash = tokenSha256(token);
    const key = hash.toString('base64');
    const now = this.now();
    const cached = this.cache.get(key);
    let credential = cached && cached.until > now ? cached.credential : undefined;
    if (!cached || cached.until <= now) credential = await this.lookUp(key, hash, now);
    // An expiry passes between lookups too.
    if (credential?.expires_at && credential.expires_at.getTime() <= now) return undefined;
    if (credential) this.noteUse(credential.id, now);
    return credential;
  }

  /** One lookup per token at a time, however many calls carry it at once. */
  private lookUp(key: string, hash: Buffer, now: number): Promise<q.CredentialRow | undefined> {
    const pending = this.lookups.get(key);
    if (pending) return pending;
    const lookup = q
      .findUsableCredential(this.db, hash)
      .then((credential) => {
        if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value!);
        this.cache.set(key, { credential, until: now + this.cacheMs });
        return credential;
      })
      .finally(() => this.lookups.delete(key));
    this.lookups.set(key, lookup);
    return lookup;
  }

  private noteUse(id: string, now: number): void {
    if ((this.touchedAt.get(id) ?? 0) + this.touchEveryMs > now) return;
    this.touchedAt.set(id, now);
    // Best effort, off the request's path: a lost write only makes last_used_at a minute older.
    void q.touchCredentials(this.db, [id]).catch(() => undefined);
  }
}
