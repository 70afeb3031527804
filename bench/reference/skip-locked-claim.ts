/**
 * Yardstick for the backlog drain: the bare mechanism under Dispatch's claim. A table of pending
 * rows (a partial index on the pending ones, like dispatch_tasks_pending_idx), drained by 4
 * clients each claiming 100 rows per transaction with `FOR UPDATE SKIP LOCKED` and marking them
 * claimed. No agents, scoring, events or outbox: the ceiling of "claim and mark" on this server.
 */
import pg from 'pg';
import { withBenchDatabase } from '../lib/database.js';

const CLIENTS = 4;
const CLAIM = 100;

export interface ClaimResult {
  rows: number;
  elapsedMs: number;
  perSecond: number;
}

export async function skipLockedClaimRate(rows: number): Promise<ClaimResult> {
  return await withBenchDatabase(
    'skip_locked',
    async (database) => {
      const pool = database.handle.pool;
      await pool.query(`CREATE TABLE bench_claims (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, priority int NOT NULL DEFAULT 3,
        created_at timestamptz NOT NULL DEFAULT now(), claimed_by int, claimed_at timestamptz)`);
      await pool.query('CREATE INDEX bench_claims_pending_idx ON bench_claims (priority, created_at, id) WHERE claimed_by IS NULL');
      await pool.query('INSERT INTO bench_claims (priority) SELECT 1 + g % 5 FROM generate_series(1, $1) g', [rows]);
      await pool.query('VACUUM ANALYZE bench_claims');
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, async () => {
          const client = new pg.Client({ connectionString: database.url });
          await client.connect();
          return client;
        }),
      );
      try {
        const started = performance.now();
        await Promise.all(
          clients.map(async (client, n) => {
            for (;;) {
              const { rowCount } = await client.query(
                `UPDATE bench_claims SET claimed_by = $1, claimed_at = now()
                  WHERE id IN (SELECT id FROM bench_claims WHERE claimed_by IS NULL
                                ORDER BY priority, created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`,
                [n, CLAIM],
              );
              if (!rowCount) return;
            }
          }),
        );
        const elapsedMs = performance.now() - started;
        const { rows: left } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bench_claims WHERE claimed_by IS NULL');
        if (left[0]!.n !== 0) throw new Error(`SKIP LOCKED yardstick left ${left[0]!.n} rows unclaimed`);
        return { rows, elapsedMs, perSecond: (rows * 1_000) / elapsedMs };
      } finally {
        await Promise.all(clients.map((c) => c.end()));
      }
    },
    false,
  );
}
