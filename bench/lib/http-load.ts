import autocannon from 'autocannon';

/**
 * Closed-loop HTTP load with autocannon, over one or several Dispatch replicas (127.0.0.1 only):
 * a warm-up, then the measured run. With several targets the connections are split between them
 * and all run at once, as a load balancer in front of the replicas would spread them.
 */

// autocannon ignores a top-level `path`: the path goes in the URL, or in `requests`.
export type RequestShape = Pick<autocannon.Options, 'method' | 'body' | 'headers' | 'requests'>;

export interface LoadOptions {
  connections: number;
  warmupS: number;
  durationS: number;
}

export interface LoadResult {
  requestsPerSecond: number;
  p50: number;
  /** With several targets: the highest of their p99s (autocannon gives percentiles, not histograms). */
  p99: number;
  max: number;
  total: number;
  non2xx: number;
  errors: number;
}

function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) throw new Error(`load tests only target this machine, not ${host}`);
}

/** `total` connections over `parts` targets, as evenly as they go (50 over 3: 17, 17, 16). */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

async function once(urls: readonly string[], shape: RequestShape, connections: number, seconds: number): Promise<autocannon.Result[]> {
  const shares = split(connections, urls.length);
  return await Promise.all(urls.map((url, i) => autocannon({ url, connections: shares[i]!, duration: seconds, ...shape })));
}

export async function loadPhase(urls: readonly string[], shape: RequestShape, options: LoadOptions): Promise<LoadResult> {
  urls.forEach(assertLoopback);
  if (urls.length === 0 || urls.length > options.connections) throw new Error(`need 1 to ${options.connections} targets, got ${urls.length}`);
  await once(urls, shape, options.connections, options.warmupS);
  const results = await once(urls, shape, options.connections, options.durationS);
  const total = results.reduce((sum, r) => sum + r.requests.total, 0);
  const requestsPerSecond = results.reduce((sum, r) => sum + r.requests.total / r.duration, 0);
  // Weighted by requests: the median of the union lies between the parts' medians.
  const p50 = results.reduce((sum, r) => sum + r.latency.p50 * r.requests.total, 0) / Math.max(1, total);
  return {
    requestsPerSecond,
    p50,
    p99: Math.max(...results.map((r) => r.latency.p99)),
    max: Math.max(...results.map((r) => r.latency.max)),
    total,
    non2xx: results.reduce((sum, r) => sum + r.non2xx, 0),
    errors: results.reduce((sum, r) => sum + r.errors + r.timeouts, 0),
  };
}
