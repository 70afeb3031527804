import { z } from 'zod';

const positiveMs = z.number().int().positive();

/**
 * Every setting Dispatch reads, with v1's key names and defaults. Where v1's default was a
 * localhost URL for an optional service (Warren, PromptForge), the default here is "not
 * configured" so a fresh machine runs in standalone mode instead of failing to reach them.
 */
export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().default('0.0.0.0'),
        port: z.number().int().min(0).max(65535).default(8600),
        metrics_port: z.number().int().min(0).max(65535).default(8601),
        admin_token: z.string().default(''),
        rate_limit_per_minute: z.number().int().positive().default(120),
        body_limit_bytes: z.number().int().positive().default(1024 * 1024),
        shutdown_grace_ms: positiveMs.default(10_000),
        // A comment line on open assignment streams this often, so proxies and clients see them alive.
        stream_keepalive_ms: z.number().int().min(100).max(15_000).default(15_000),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        // token: every /api/v1 call carries a credential. header: X-Agent-ID is taken at its word
        // (v1, a trusted network). Unset: header when the API listens on loopback only, else token.
        mode: z.enum(['token', 'header']).optional(),
        // Token mode with no admin token and no admin credential: an admin credential is made and
        // its token written here (mode 0600), so a first user can issue the others.
        bootstrap_token_file: z.string().default('.dispatch/admin-token'),
      })
      .strict()
      .prefault({}),
    database: z
      .object({
        url: z.string().default(''),
        // Connections of the API pool (request handling and most background loops), opened on
        // demand. Small by default so that 10 replicas fit a stock max_connections of 100 (see
        // docs/OPERATIONS.md, "Connections"); the API batches its writes and reads, so a few suffice.
        pool_size: z.number().int().positive().max(200).default(4),
        // Where the connections that hold session state go when database.url is a transaction
        // pooler (PgBouncer): graphile-worker (LISTEN, prepared statements), the assigner's and the
        // maintenance loops' session advisory locks, migrations. Empty: database.url.
        direct_url: z.string().default(''),
        // The direct pool for those session locks (the assigner holds one while it drains; a
        // migration holds its lock on one and migrates on another, hence at least 2).
        direct_pool_size: z.number().int().min(2).max(200).default(2),
        // How long a pooled connection may sit idle before it is closed; 0 keeps every connection
        // once opened. Each new connection is a new backend that compiles and plans every function
        // and prepared statement again on its first calls, and after a lull that lands on the
        // first tasks of the next burst (docs/BENCHMARKS.md, session 31). The pool sizes above
        // are the budget either way.
        idle_timeout_ms: z.number().int().min(0).max(86_400_000).default(0),
        embedded_dir: z.string().default('.dispatch/postgres'),
        embedded_port: z.number().int().min(1).max(65535).default(54329),
      })
      .strict()
      .prefault({}),
    hermes: z
      .object({
        url: z.string().default('nats://localhost:4222'),
        stats_interval_ms: positiveMs.default(10_000),
        // How often the outbox is probed for events to publish. This replica's requests and
        // assignment batches cut the wait short (src/events/outbox-publisher.ts); events other
        // replicas and background loops write wait at most this long.
        outbox_poll_interval_ms: positiveMs.default(50),
        // One way to log in, or none (an open server): see src/events/nats-auth.ts.
        user: z.string().default(''),
        password: z.string().default(''),
        token: z.string().default(''),
        nkey_seed: z.string().default(''),
        creds_file: z.string().default(''),
        tls_ca_file: z.string().default(''),
        tls_cert_file: z.string().default(''),
        tls_key_file: z.string().default(''),
        // swarm.task.request: false leaves it to another service (no consumer is made); a
        // non-empty list accepts requests only from these requesters (the rest are rejected).
        accept_requests: z.boolean().default(true),
        requesters: z.array(z.string().min(1).max(200)).default([]),
      })
      .strict()
      .superRefine((hermes, ctx) => {
        const ways = [hermes.user || hermes.password ? 'user' : '', hermes.token ? 'token' : '', hermes.nkey_seed ? 'nkey_seed' : '', hermes.creds_file ? 'creds_file' : ''];
        const chosen = ways.filter(Boolean);
        if (chosen.length > 1) ctx.addIssue({ code: 'custom', path: [chosen[1]!], message: `give one way to log in to NATS, not ${chosen.join(' and ')}` });
        if ((hermes.user === '') !== (hermes.password === '')) ctx.addIssue({ code: 'custom', path: [hermes.user ? 'password' : 'user'], message: 'user and password go together' });
        if ((hermes.tls_cert_file === '') !== (hermes.tls_key_file === '')) {
          ctx.addIssue({ code: 'custom', path: [hermes.tls_cert_file ? 'tls_key_file' : 'tls_cert_file'], message: 'a client certificate needs its key, and the other way round' });
        }
      })
      .prefault({}),
    warren: z
      .object({
        url: z.string().default(''),
        token: z.string().default(''),
        timeout_ms: positiveMs.default(2_000),
        state_ttl_ms: positiveMs.default(2_000),
      })
      .strict()
      .prefault({}),
    promptforge: z
      .object({
        url: z.string().default(''),
        token: z.string().default(''),
        timeout_ms: positiveMs.default(2_000),
        persona_ttl_ms: positiveMs.default(30_000),
      })
      .strict()
      .prefault({}),
    assignment: z
      .object({
        tick_interval_ms: positiveMs.default(5_000),
        wake_timeout_ms: positiveMs.default(30_000),
        wake_cooldown_ms: positiveMs.default(60_000),
        default_timeout_ms: positiveMs.default(300_000),
        max_concurrent_per_agent: z.number().int().positive().default(3),
        batch_size: z.number().int().positive().max(5_000).default(500),
        // Batches the active assigner runs side by side while a backlog fills them, each on its
        // own share of the free agents (src/assignment/assigner.ts, drainSideBySide). 1: one at a time.
        parallel_batches: z.number().int().positive().max(16).default(2),
        // Candidates listed in each decision recorded at assignment (the winner first); the rest
        // are counted by outcome. Each listed one costs the batch's write (src/assignment/assigner.ts).
        recorded_candidates: z.number().int().positive().max(100).default(3),
        agent_heartbeat_timeout_ms: positiveMs.default(30_000),
        // Aging (no starvation): a pending task's effective priority rises one level per aging_ms
        // waited, so a priority-5 task overtakes priority-1 work 4 x aging_ms younger than it. 0: off.
        aging_ms: z.number().int().min(0).max(2_147_483_647).default(60_000),
        // Vacuum the queue's hot tables once they hold this many dead tuples, checked every
        // vacuum_interval_ms by the replica holding the due-timer lease (0: leave it all to
        // autovacuum). See src/assignment/queue-maintenance.ts.
        vacuum_interval_ms: z.number().int().min(0).default(10_000),
        vacuum_dead_tuples: z.number().int().positive().default(50_000),
        // A table whose vacuum took T waits vacuum_rest_factor x T before the next: on a table
        // with a long history a vacuum reads every index whole, so it stays a bounded share of the time.
        vacuum_rest_factor: z.number().min(0).max(1_000).default(9),
      })
      .strict()
      .prefault({}),
    lifecycle: z
      .object({
        retry_backoff_base_ms: z.number().int().min(0).default(1_000),
        retry_backoff_max_ms: z.number().int().min(0).default(60_000),
        reassign_budget: z.number().int().positive().default(3),
        default_start_timeout_ms: z.number().int().positive().nullable().default(null),
        sweep_interval_ms: positiveMs.default(5_000),
      })
      .strict()
      .prefault({}),
    retention: z
      .object({
        // Finished tasks (completed, failed, cancelled, timed out) are deleted with their events
        // this long after they finished; 0 keeps every task forever. See src/tasks/retention.ts.
        keep_finished_ms: z.number().int().min(0).default(7 * 24 * 3_600_000),
        interval_ms: positiveMs.default(60_000),
        batch_size: z.number().int().positive().max(50_000).default(2_000),
      })
      .strict()
      .prefault({}),
    schedules: z
      .object({
        // How often each replica looks for due schedules (an index probe): the most an
        // occurrence's task can be late. See src/schedules/schedule.runner.ts.
        poll_interval_ms: positiveMs.default(250),
        // An occurrence older than this when a replica first sees it was missed (every replica
        // down): the schedule's catch_up policy decides (skip, or one task for them all).
        late_after_ms: positiveMs.default(60_000),
      })
      .strict()
      .prefault({}),
    worker: z
      .object({
        concurrency: z.number().int().positive().max(64).default(3),
        // graphile-worker's own pool on the direct URL: one connection LISTENs for new jobs, the
        // rest fetch and complete jobs (brief statements; the handlers use the API pool).
        pool_size: z.number().int().min(2).max(200).default(3),
        // Scheduled jobs (timeouts, wake checks) are found by polling; jobs due now arrive by
        // NOTIFY at once. This bounds how late a timeout can fire. (Delayed tasks, ends of retry
        // backoff and expiry do not wait for it: src/lifecycle/due-timer.ts.)
        poll_interval_ms: z.number().int().min(50).default(500),
        heartbeat_interval_ms: positiveMs.default(5_000),
        dead_after_ms: positiveMs.default(30_000),
        // The job worker pool is judged lost when it has failed to fetch a job for this long (its
        // own retries included). Longer than a database restart, which it rides out by itself.
        pool_lost_after_ms: positiveMs.default(60_000),
        // Once the pool is lost, /ready answers 503 this long before the process exits (1), so a
        // load balancer stops sending work before connections are refused.
        unready_before_exit_ms: z.number().int().min(0).default(5_000),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        // Scopes with a label of their own in the queue metrics; the rest are summed as `other`,
        // so a swarm that invents scopes cannot blow up Prometheus's series count.
        max_scopes: z.number().int().positive().max(10_000).default(50),
      })
      .strict()
      .prefault({}),
    tracing: z
      .object({
        // OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); empty: no spans are
        // made and the exporter is not loaded. See src/observability/tracing.ts.
        otlp_endpoint: z.string().default(''),
        // key=value request headers for the collector (an API key): never logged.
        otlp_headers: z.array(z.string()).default([]),
        service_name: z.string().min(1).default('dispatch'),
      })
      .strict()
      .prefault({}),
    logging: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        // Structured JSON only: one object per line, for log shippers and `jq`.
        format: z.enum(['json']).default('json'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type DispatchConfig = z.infer<typeof configSchema>;
/** Input shape: any subset of the config, as a YAML file or a test would write it. */
export type DispatchConfigInput = z.input<typeof configSchema>;
