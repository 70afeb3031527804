/**
 * Names and numbers that TypeScript and the database's SQL must agree on. The SQL functions in
 * db/migrations cannot import these, so they spell some of them out again; the test
 * test/integration/contract.test.ts reads the functions back from a migrated database and fails
 * when either side changes alone. Change a value here only together with a migration that
 * replaces the functions using it.
 */

/** graphile-worker task identifiers: the handlers' names, and what SQL and TS enqueue. */
export const JOB = {
  /**
   * Drain the pending queue (src/assignment/assigner.ts) at a time (dispatch_request_assignment_at)
   * or on another replica (a stopping one hands over); new work wakes assigners by NOTIFY_CHANNEL.assign.
   */
  assignmentRun: 'assignment:run',
  /** Ask Warren to wake a sleeping agent that won work. */
  wakeAgent: 'wake:agent',
  /** Give a woken agent's tasks back if it has not woken by wake_timeout_ms. */
  wakeCheck: 'wake:check',
} as const;

/** Prefixes of graphile-worker job keys; the key is the prefix followed by an id. */
export const JOB_KEY = {
  /** + epoch second: one assignment pass at a time no task row holds (SQL: dispatch_request_assignment_at). */
  assignmentAt: 'assignment:at:',
  /** + agent name: at most one pending wake per agent. */
  wake: 'wake:',
  /** + agent name: at most one pending wake check per agent. */
  wakeCheck: 'wake-check:',
} as const;

/**
 * PostgreSQL advisory lock keys (one bigint each, in the default class), distinct so that two
 * protocols never wait for each other. docs/ARCHITECTURE.md describes who holds each and how.
 * Some are written into SQL functions by migrations (0002, 0008, 0019, 0026): they never change.
 */
export const ADVISORY_LOCK = {
  /** Session lock of the one assigner draining the queue; writers probe it (migration 0002). */
  assignerActive: 72142501,
  /** Held shared by every writer that makes work until it commits; the assigner waits them out. */
  assignerBarrier: 72142502,
  /** One replica at a time vacuums the hot tables (src/assignment/queue-maintenance.ts). */
  queueMaintenance: 72142503,
  /** One replica at a time deletes finished tasks (src/tasks/retention.ts). */
  taskRetention: 72142504,
  /** Transaction lock of the replica folding the scope counters (dispatch_fold_scope_counters, migration 0008). */
  scopeCounterFolding: 72142505,
  /**
   * Scope controls: every assignment batch holds it shared for its transaction; a change to
   * dispatch_scopes (src/scopes/) takes it exclusively first, so once the change commits no batch
   * that read the old pause or limits is still in flight.
   */
  scopeControls: 72142506,
  /**
   * Session lock, on its LISTEN connection, of the one replica whose due timer wakes at due
   * instants (src/lifecycle/due-timer.ts); the others try to take it at each safety pass.
   */
  dueTimer: 72142507,
  /** Transaction lock of the replica publishing an outbox batch (src/events/outbox.queries.ts). */
  outboxPublisher: 72142510,
  /** Held while a replica migrates ("M_DISP"); above 2^31, so it is passed as text and cast. */
  migration: 0x4d5f_4449_5350n,
} as const;

/** LISTEN/NOTIFY channels. */
export const NOTIFY_CHANNEL = {
  /**
   * Work given to an agent or taken away committed (migration 0010, dispatch_notify_assignments()):
   * one notification per transaction, its payload the transaction's id (migration 0033; empty
   * before); each replica's hub (src/agents/assignment-hub.ts) then reads the audit trail, unless
   * it has read past that transaction already.
   */
  assignments: 'dispatch_assignments',
  /**
   * A statement made a task due at a time (delayed, expiring, or back from a backoff) or gave an
   * attempt a deadline sooner than DEADLINE_NOTICE_WITHIN_MS; the payload is the earliest such
   * time in epoch milliseconds (SQL: dispatch_notify_due, migrations 0012 and 0023).
   */
  due: 'dispatch_due',
  /**
   * Work appeared and no assigner is draining (SQL: dispatch_request_assignment, migration 0019):
   * empty payload; every replica hearing it drains (src/assignment/assignment.service.ts wake()).
   */
  assign: 'dispatch_assign',
} as const;

/**
 * The due timer reads the next deadline at least this often, whatever its tick interval
 * (src/lifecycle/due-timer.ts), so an assignment announces on NOTIFY_CHANNEL.due only the deadlines
 * sooner than this (src/assignment/assignment.queries.ts): with the usual minutes-long timeouts, a
 * batch sends nothing.
 */
export const DEADLINE_NOTICE_WITHIN_MS = 5_000;
