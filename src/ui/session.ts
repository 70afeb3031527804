import { getConnInfo } from '@hono/node-server/conninfo';
import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { hasRole, type Caller } from '../domain/caller.js';
import { DispatchError } from '../domain/errors.js';
import type { ApiEnv } from '../http/context.js';
import { callerForToken, type CallerIdentification } from '../http/middleware.js';

/**
 * The dashboard's session is the credential's token itself, in a cookie only the browser sends
 * back to /ui and no script can read (HttpOnly, SameSite=Strict, Path=/ui, Secure but on plain
 * loopback http). Every request checks it again the way the API checks a bearer token, so a
 * revoked or expired credential is out at its next click on every replica, with no session table
 * and no state a load balancer must stick to. The token is never logged.
 */
export const SESSION_COOKIE = 'dispatch_ui';

/** The header the client script sends with every action; a cross-site form or image cannot. */
export const CSRF_HEADER = 'x-dispatch-ui';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$/;

const hostOf = (c: Context) => new URL(c.req.url).hostname.replace(/^\[|\]$/g, '');

const hostOfOrigin = (origin: string) => {
  try {
    return new URL(origin).host;
  } catch {
    return undefined;
  }
};

/** Whether the browser reached us over plain http on a loopback name: the one case without Secure. */
export function plainLoopback(c: Context): boolean {
  return new URL(c.req.url).protocol === 'http:' && LOOPBACK.test(hostOf(c));
}

function peerIsLoopback(c: Context): boolean {
  try {
    return LOOPBACK.test(getConnInfo(c).remote.address ?? '');
  } catch {
    return false;
  }
}

export function startSession(c: Context, token: string): void {
  setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Strict', secure: !plainLoopback(c), path: '/ui' });
}

export function endSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { httpOnly: true, sameSite: 'Strict', secure: !plainLoopback(c), path: '/ui' });
}

/** A browser navigating to a page (not the script's fetches or the event stream): it gets HTML answers. */
export const wantsPage = (c: Context): boolean => c.req.method === 'GET' && c.req.header('x-dispatch-fragment') === undefined && c.req.path !== '/ui/events';

/** The dashboard is for those who may read everything: observers and admins. */
export function dashboardCaller(caller: Caller | undefined): Caller {
  if (!caller) throw new DispatchError('unauthorized', 'not a valid token (unknown, revoked or expired)');
  if (!hasRole(caller, 'observer')) throw new DispatchError('forbidden', 'the dashboard needs an observer or admin credential');
  return caller;
}

/** Header mode on loopback (a developer's machine, `npm start`): read-only without signing in. */
const HEADER_MODE_VIEWER: Caller = {
  agent: 'dashboard',
  admin: false,
  roles: new Set(['observer']),
  readsAllTasks: true,
  scopes: [],
  actor: 'dashboard',
};

/** False for the header-mode viewer, who has nothing to sign out of. */
export const signedIn = (caller: Caller): boolean => caller !== HEADER_MODE_VIEWER;

/**
 * Who is looking: the session cookie's credential (observer or admin); without one, a read-only
 * viewer in header mode when the browser is on this machine; otherwise sign in first (pages are
 * redirected, the live and action endpoints answer 401).
 */
export function dashboardSession(auth: CallerIdentification): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const token = getCookie(c, SESSION_COOKIE);
    let caller: Caller | undefined;
    if (token !== undefined) {
      try {
        caller = dashboardCaller(await callerForToken(auth, token, undefined));
      } catch (error) {
        if (!(error instanceof DispatchError)) throw error;
        endSession(c);
      }
    } else if (auth.mode === 'header' && peerIsLoopback(c)) {
      caller = HEADER_MODE_VIEWER;
    }
    if (!caller) {
      if (wantsPage(c)) return c.redirect('/ui/login', 303);
      throw new DispatchError('unauthorized', 'sign in to the dashboard first');
    }
    c.set('caller', caller);
    await next();
  };
}

/**
 * Cross-site request forgery: the cookie is SameSite=Strict, and on top of that every POST must
 * come from our own origin (Origin / Sec-Fetch-Site, which browsers always send on POST) and the
 * actions must carry X-Dispatch-UI, which only our script sends (a cross-origin request that sets
 * it needs a CORS preflight, which is never granted).
 */
export function sameOriginPosts(options: { requireHeader: boolean }): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    if (c.req.method !== 'POST') return await next();
    const site = c.req.header('sec-fetch-site');
    const origin = c.req.header('origin');
    // Host, not the whole origin: behind a TLS-terminating proxy the browser's origin is https.
    const foreign = (site !== undefined && site !== 'same-origin' && site !== 'none') || (origin !== undefined && hostOfOrigin(origin) !== c.req.header('host'));
    if (foreign) throw new DispatchError('forbidden', 'cross-site request refused');
    if (options.requireHeader && c.req.header(CSRF_HEADER) !== '1') {
      throw new DispatchError('forbidden', `dashboard actions must carry the ${CSRF_HEADER} header`, [{ field: CSRF_HEADER, message: 'must be 1' }]);
    }
    await next();
  };
}
