import type { Caller } from '../tasks/task.service.js';

/** What middleware puts on the Hono context for the handlers. */
export type ApiEnv = {
  Variables: {
    requestId: string;
    caller: Caller;
  };
};
