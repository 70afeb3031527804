/**
 * The shapes the client sends and receives, derived from the code that validates and renders them
 * on the server (zod schemas with `z.input`, the `*ToJson` functions with `ReturnType`), so a field
 * renamed there is a type error here. Type-only imports: the built client carries none of the
 * server's runtime code (lint enforces it for src/client/).
 */
import type { z } from 'zod';
import type { agentToJson } from '../agents/agent.json.js';
import type { registrationSchema } from '../agents/agent.schemas.js';
import type { explainPlacement } from '../assignment/placement.js';
import type { CredentialRow } from '../auth/credentials.queries.js';
import type { newCredentialSchema } from '../auth/credentials.schemas.js';
import type { ErrorCode, ErrorDetail } from '../domain/errors.js';
import type { QueueStats } from '../tasks/stats.queries.js';
import type { taskEventToJson, taskToJson } from '../tasks/task.json.js';
import type { completeTaskSchema, createTaskSchema, failTaskSchema, listTasksQuerySchema, patchTaskSchema } from '../tasks/task.schemas.js';

export type { ErrorCode, ErrorDetail };

/** A value as JSON.stringify sends it: dates become ISO strings. */
type Jsonified<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };

export type Task = ReturnType<typeof taskToJson>;
export type TaskStatus = Task['status'];
export type TaskEvent = ReturnType<typeof taskEventToJson>;
export type Agent = ReturnType<typeof agentToJson>;
export type Credential = Jsonified<CredentialRow>;
/** An issued credential: the token is shown this once. */
export type IssuedCredential = Credential & { token: string };
export type QueueStatsJson = QueueStats;
/** Why a task is where it is; callers who are not observers or admins see a redacted version. */
export type Placement = Awaited<ReturnType<typeof explainPlacement>> | Record<string, unknown>;

export type CreateTaskInput = z.input<typeof createTaskSchema>;
export type PatchTaskInput = z.input<typeof patchTaskSchema>;
export type CompleteTaskInput = z.input<typeof completeTaskSchema>;
export type FailTaskInput = z.input<typeof failTaskSchema>;
export type RegisterAgentInput = z.input<typeof registrationSchema>;
export type IssueCredentialInput = z.input<typeof newCredentialSchema>;
/** Query of GET /api/v1/tasks; numbers are accepted where the API reads digits. */
export type ListTasksQuery = { [K in keyof z.input<typeof listTasksQuerySchema>]?: z.input<typeof listTasksQuerySchema>[K] | number };

export interface TaskPage {
  tasks: Task[];
  next_cursor: string | null;
}

/** The body of every error answer of the API. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details: ErrorDetail[] };
}
