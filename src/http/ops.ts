import { Hono } from 'hono';
import type { Registry } from 'prom-client';

export interface OpsDeps {
  registry: Registry;
  /** Resolves true when the database answers and every migration is applied. */
  isReady: () => Promise<boolean>;
}

/** Port 8601: liveness, readiness and Prometheus metrics, for orchestrators and scrapers. */
export function createOpsApp({ registry, isReady }: OpsDeps): Hono {
  return new Hono()
    .get('/health', (c) => c.json({ status: 'ok' }))
    .get('/ready', async (c) => {
      const ready = await isReady().catch(() => false);
      return c.json({ status: ready ? 'ready' : 'not ready' }, ready ? 200 : 503);
    })
    .get('/metrics', async (c) => {
      c.header('Content-Type', registry.contentType);
      return c.body(await registry.metrics());
    });
}
