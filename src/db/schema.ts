import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** JSON columns: any JSON value in, parsed JSON out. */
export type Json = ColumnType<unknown, unknown, unknown>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type DefaultedTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export const TASK_STATUSES = ['pending', 'assigned', 'running', 'completed', 'failed', 'cancelled', 'timeout'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const ACTIVE_STATUSES = ['assigned', 'running'] as const satisfies readonly TaskStatus[];
export const TERMINAL_STATUSES = ['completed', 'failed', 'cancelled', 'timeout'] as const satisfies readonly TaskStatus[];

export const AGENT_STATUSES = ['ready', 'sleeping', 'starting', 'busy', 'degraded', 'stopped', 'unknown'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

export interface TasksTable {
  id: Generated<string>;
  requester: string;
  title: string;
  description: string | null;
  scope: string;
  priority: Generated<number>;
  status: Generated<TaskStatus>;
  assignee: string | null;
  attempt: Generated<number>;
  result: Json | null;
  error: string | null;
  context: Json | null;
  timeout_ms: Generated<number>;
  heartbeat_timeout_ms: number | null;
  start_timeout_ms: number | null;
  max_retries: Generated<number>;
  retry_count: Generated<number>;
  reassign_count: Generated<number>;
  parent_id: string | null;
  idempotency_key: string | null;
  not_before: Timestamp | null;
  avoid_agent: string | null;
  deadline_at: Timestamp | null;
  last_progress_at: Timestamp | null;
  unmatched_at: Timestamp | null;
  start_alarm_at: Timestamp | null;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
  assigned_at: Timestamp | null;
  started_at: Timestamp | null;
  completed_at: Timestamp | null;
}

export interface TaskEventsTable {
  id: ColumnType<string, never, never>;
  event_id: Generated<string>;
  task_id: string;
  event: string;
  agent_id: string | null;
  attempt: number | null;
  payload: Json;
  /** Assigned events only: the placement decision (migration 0007). */
  placement: Json | null;
  created_at: DefaultedTimestamp;
}

export interface AgentsTable {
  name: string;
  capabilities: ColumnType<string[], string[] | undefined, string[]>;
  status: ColumnType<AgentStatus, AgentStatus | undefined, AgentStatus>;
  source: ColumnType<'standalone' | 'warren', 'standalone' | 'warren' | undefined, 'standalone' | 'warren'>;
  max_concurrent: number | null;
  active_tasks: ColumnType<number, never, never>;
  drained: Generated<boolean>;
  drained_at: Timestamp | null;
  drained_by: string | null;
  last_seen_at: Timestamp | null;
  last_assigned_at: Timestamp | null;
  wake_requested_at: Timestamp | null;
  avoid_until: Timestamp | null;
  created_at: DefaultedTimestamp;
  updated_at: DefaultedTimestamp;
}

export interface Database {
  dispatch_tasks: TasksTable;
  dispatch_task_events: TaskEventsTable;
  dispatch_agents: AgentsTable;
}

export type TaskRow = Selectable<TasksTable>;
export type NewTaskRow = Insertable<TasksTable>;
export type TaskUpdate = Updateable<TasksTable>;
export type TaskEventRow = Selectable<TaskEventsTable>;
export type AgentRow = Selectable<AgentsTable>;
