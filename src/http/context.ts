import type { Caller } from '../domain/caller.js';

/** What middleware puts on the Hono context for the handlers. */
export type ApiEnv = {
  Variables: {
    requestId: string;
    caller: Caller;
  };
};
