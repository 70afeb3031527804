import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { connect, nkeys } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDispatch, type Dispatch } from '../../src/app.js';
import type { DispatchConfigInput } from '../../src/config/config.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { testConfig } from '../helpers/dispatch.js';
import { startNatsServer, type TestNatsServer } from '../helpers/nats-server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Dispatch logs in to a NATS server that demands it: user and password, an NKey, and TLS with a
 * client certificate (certificates made here). A refused login is one error naming the setting,
 * never the secret, and the replica keeps serving with its events waiting in the outbox.
 */

const PASSWORD = 'nats-pw-83b1f0';
const nkeyUser = nkeys.createUser();
const NKEY_SEED = new TextDecoder().decode(nkeyUser.getSeed());

let dir: string;
let database: TestDatabase;
let authServer: TestNatsServer;
let tlsServer: TestNatsServer;
const files = (name: string) => path.join(dir, name);

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function makeCertificates(): void {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=dispatch-test-ca', '-keyout', 'ca.key', '-out', 'ca.pem');
  for (const [name, extension] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    writeFileSync(files(`${name}.ext`), `${extension}\n`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'dispatch-nats-login-'));
  makeCertificates();
  writeFileSync(
    files('auth.conf'),
    `authorization { users = [ { user: "dispatch", password: "${PASSWORD}" }, { nkey: "${nkeyUser.getPublicKey()}" } ] }\n`,
  );
  writeFileSync(
    files('tls.conf'),
    `tls { cert_file: "${files('server.pem')}", key_file: "${files('server.key')}", ca_file: "${files('ca.pem')}", verify: true }\n`,
  );
  authServer = await startNatsServer({ args: ['-c', files('auth.conf')] });
  tlsServer = await startNatsServer({ args: ['-c', files('tls.conf')] });
  database = await createTestDatabase();
});
afterAll(async () => {
  await authServer?.dispose();
  await tlsServer?.dispose();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** A replica with its log kept in memory, so a test can read what it said. */
async function replica(hermes: NonNullable<DispatchConfigInput['hermes']>): Promise<{ dispatch: Dispatch; log: () => string }> {
  const config = testConfig({ hermes: { stats_interval_ms: 60_000, ...hermes }, logging: { level: 'info' } });
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const dispatch = await startDispatch(config, database.url, createLogger(config.logging, sink));
  return { dispatch, log: () => text };
}

async function expectConnected(hermes: NonNullable<DispatchConfigInput['hermes']>): Promise<void> {
  const { dispatch, log } = await replica(hermes);
  try {
    await waitFor(() => dispatch.events.status().streamReady, { what: 'stream provisioned over the authenticated connection' }).catch((error: Error) => {
      throw new Error(`${error.message}; the replica said:\n${log()}`);
    });
  } finally {
    await dispatch.stop();
  }
}

describe('NATS login', () => {
  it('refuses an open connection, so the server really demands a login', async () => {
    await expect(connect({ servers: authServer.url })).rejects.toMatchObject({ code: 'AUTHORIZATION_VIOLATION' });
  });

  it('logs in with a user and password', async () => {
    await expectConnected({ url: authServer.url, user: 'dispatch', password: PASSWORD });
  });

  it('logs in with an NKey seed', async () => {
    await expectConnected({ url: authServer.url, nkey_seed: NKEY_SEED });
  });

  it('connects over TLS with a client certificate, checking the server against the CA', async () => {
    // Without a client certificate the server turns the connection away.
    await expect(connect({ servers: tlsServer.url, tls: { caFile: files('ca.pem') }, timeout: 2_000 })).rejects.toBeDefined();
    await expectConnected({
      url: tlsServer.url,
      tls_ca_file: files('ca.pem'),
      tls_cert_file: files('client.pem'),
      tls_key_file: files('client.key'),
    });
  });

  it('says once which setting holds the refused login, never its value, and keeps serving', async () => {
    const wrong = 'wrong-pw-5e77d2';
    const { dispatch, log } = await replica({ url: authServer.url.replace('nats://', 'nats://dispatch:url-secret@'), user: 'dispatch', password: wrong });
    try {
      await waitFor(() => log().includes("NATS refused Dispatch's login"), { what: 'the refused login logged' });
      const line = log().split('\n').find((l) => l.includes("NATS refused Dispatch's login"))!;
      expect(JSON.parse(line)).toMatchObject({ level: 'error', settings: 'hermes.user / hermes.password' });
      expect(log()).not.toContain(wrong);
      expect(log()).not.toContain('url-secret');
      expect(dispatch.events.status().connected).toBe(false);
      const ready = await fetch(`http://127.0.0.1:${dispatch.opsPort}/ready`);
      expect(ready.status).toBe(200);
    } finally {
      await dispatch.stop();
    }
  });
});
