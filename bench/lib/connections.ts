import pg from 'pg';

/** Connections per application_name on one database (or the whole server), sampled until stopped. */
export interface ConnectionSampler {
  /** The most seen at once per application_name, and in total, since start. */
  peak(): Record<string, number>;
  /** Counts right now. */
  now(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/**
 * Samples pg_stat_activity every `intervalMs` over a connection of its own (application_name
 * `dispatch-bench-sampler`, not counted). `database` null: every client backend on the server.
 */
export async function sampleConnections(serverUrl: string, database: string | null, intervalMs = 50): Promise<ConnectionSampler> {
  const client = new pg.Client({ connectionString: serverUrl, application_name: 'dispatch-bench-sampler' });
  await client.connect();
  const peak: Record<string, number> = {};
  const read = async () => {
    const { rows } = await client.query<{ app: string; n: number }>(
      `SELECT coalesce(nullif(application_name, ''), '(none)') AS app, count(*)::int AS n FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND ($1::text IS NULL OR datname = $1)
        GROUP BY 1`,
      [database],
    );
    const counts: Record<string, number> = Object.fromEntries(rows.map((r) => [r.app, r.n]));
    counts.total = rows.reduce((sum, r) => sum + r.n, 0);
    for (const [app, n] of Object.entries(counts)) peak[app] = Math.max(peak[app] ?? 0, n);
    return counts;
  };
  let stopped = false;
  let loop: Promise<void> = Promise.resolve();
  const tick = () => {
    loop = read()
      .then(() => undefined, () => undefined)
      .then(() => {
        if (!stopped) setTimeout(tick, intervalMs);
      });
  };
  tick();
  return {
    peak: () => ({ ...peak }),
    now: async () => {
      await loop;
      return await read();
    },
    async stop() {
      stopped = true;
      await loop;
      await client.end();
    },
  };
}
