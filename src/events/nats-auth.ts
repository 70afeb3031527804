import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from 'nats';
import type { DispatchConfig } from '../config/config.js';

type HermesConfig = DispatchConfig['hermes'];

/** The settings that name how Dispatch logs in, for error messages (never their values). */
export function loginSettings(hermes: HermesConfig): string {
  if (hermes.user) return 'hermes.user / hermes.password';
  if (hermes.token) return 'hermes.token';
  if (hermes.nkey_seed) return 'hermes.nkey_seed';
  if (hermes.creds_file) return 'hermes.creds_file';
  return 'no credentials set (hermes.user / password, token, nkey_seed or creds_file)';
}

/**
 * How the replica logs in to NATS and checks the server: at most one way to log in (user and
 * password, a token, an NKey seed, or a `.creds` file holding a user JWT and its seed), and TLS
 * when a CA or a client certificate is given (or the URL says `tls://`). Files are read once, here,
 * so a missing one stops the start with its setting named.
 */
export function natsConnectOptions(hermes: HermesConfig): Partial<ConnectionOptions> {
  const read = (file: string, setting: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`${setting}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { cause: error });
    }
  };
  const options: Partial<ConnectionOptions> = {};
  if (hermes.user) Object.assign(options, { user: hermes.user, pass: hermes.password });
  if (hermes.token) options.token = hermes.token;
  if (hermes.nkey_seed) options.authenticator = nkeyAuthenticator(new TextEncoder().encode(hermes.nkey_seed.trim()));
  if (hermes.creds_file) options.authenticator = credsAuthenticator(read(hermes.creds_file, 'hermes.creds_file'));
  if (hermes.tls_ca_file || hermes.tls_cert_file) {
    read(hermes.tls_ca_file || hermes.tls_cert_file, hermes.tls_ca_file ? 'hermes.tls_ca_file' : 'hermes.tls_cert_file');
    options.tls = {
      ...(hermes.tls_ca_file ? { caFile: hermes.tls_ca_file } : {}),
      ...(hermes.tls_cert_file ? { certFile: hermes.tls_cert_file, keyFile: hermes.tls_key_file } : {}),
    };
  }
  return options;
}

/** Errors the server gives for credentials it refuses: retrying cannot fix them. */
export function isLoginRefused(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'AUTHORIZATION_VIOLATION' || code === 'AUTHENTICATION_EXPIRED' || code === 'AUTHENTICATION_TIMEOUT';
}
