/**
 * The Dispatch client (`dispatch/client`): a typed client of the API, the assignment stream, and
 * the agent SDK. Speaks HTTP through node:http where the runtime has it and fetch elsewhere
 * (src/client/http.ts): Node 20+, Deno, Bun, browsers; the agent SDK's signal handling uses
 * Node's `process` when it exists.
 */
export { createClient, DispatchClient, type AssignmentPoll, type DispatchClientOptions } from './client.js';
export { runAgent, type AgentRunner, type RunAgentOptions, type TaskContext } from './agent.js';
export { DispatchApiError, DispatchUnreachableError, TaskError } from './errors.js';
export { AssignmentSubscription, type AssignmentEvent, type SubscribeOptions, type TakenAwayReason } from './subscription.js';
export { parseRetryAfter, type RetryOptions } from './transport.js';
export type * from './types.js';
