/**
 * An agent that echoes its tasks: it takes every task of scope "echo", reports progress, and
 * completes it with the task's context as its result. A task whose context says {"fail": true}
 * fails for good (not retried).
 *
 *   npm start                                     # in another terminal: Dispatch on localhost:8600
 *   DISPATCH_TOKEN=$(cat .dispatch/admin-token) npx tsx examples/echo-agent.ts
 *
 * In production give the agent a worker credential of its own instead of the admin token:
 *   DISPATCH_TOKEN=$(npx dispatch credentials issue echo-1 --role worker --scopes echo --json | jq -r .token)
 *
 * Your own agent imports the same API from the package: import { runAgent } from 'dispatch/client'.
 */
import { runAgent, TaskError } from '../src/client/index.js';

const name = process.env.AGENT_NAME ?? 'echo-1';
const agent = await runAgent({
  url: process.env.DISPATCH_URL ?? 'http://localhost:8600',
  token: process.env.DISPATCH_TOKEN,
  name,
  capabilities: ['echo'],
  maxConcurrent: 4,
  async handle(task, ctx) {
    console.log(`task ${task.id} (attempt ${ctx.attempt}): ${task.title}`);
    await ctx.progress({ percent: 50 });
    if ((task.context as { fail?: boolean } | null)?.fail) throw new TaskError('asked to fail', { retryable: false });
    return { echo: task.context, by: name };
  },
});
console.log(`${agent.name} is waiting for tasks of scope "echo" (Ctrl-C stops it once its tasks are done)`);
await agent.done;
console.log('stopped');
