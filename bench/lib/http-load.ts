import autocannon from 'autocannon';

/**
 * Closed-loop HTTP load with autocannon, over one or several Dispatch replicas (127.0.0.1 only):
 * a warm-up, then the measured run. With several targets the connections are split between them
 * and all run at once, as a load balancer in front of the replicas would spread them; their
 * latency histograms are merged, so the percentiles are those of every request together.
 */

// autocannon ignores a top-level `path`: the path goes in the URL, or in `requests`.
export type RequestShape = Pick<autocannon.Options, 'method' | 'body' | 'headers' | 'requests'>;

export interface LoadOptions {
  connections: number;
  warmupS: number;
  durationS: number;
  /** What the warm-up sends, when it must be told apart from the measured run (another x-agent-id). */
  warmup?: RequestShape;
  /** Called when the measured run starts and when it ends (after the warm-up). */
  onMeasure?: (moment: 'start' | 'end') => void;
}

export interface LoadResult {
  requestsPerSecond: number;
  /** Percentiles of the 2xx responses of all targets together (merged histograms), in ms. */
  p50: number;
  p99: number;
  max: number;
  total: number;
  non2xx: number;
  errors: number;
}

// Typed by hand: @types/autocannon leaves it out. Merges results run with skipAggregateResult,
// whose latencies still travel as encoded HDR histograms.
const aggregateResult = (autocannon as unknown as { aggregateResult(results: unknown[], opts: autocannon.Options): autocannon.Result })
  .aggregateResult;

function assertLoopback(url: string): void {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) throw new Error(`load tests only target this machine, not ${host}`);
}

/** `total` connections over `parts` targets, as evenly as they go (50 over 3: 17, 17, 16). */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

async function once(urls: readonly string[], shape: RequestShape, connections: number, seconds: number): Promise<LoadResult> {
  const shares = split(connections, urls.length);
  const raw = await Promise.all(
    urls.map((url, i) => autocannon({ url, connections: shares[i]!, duration: seconds, skipAggregateResult: true, ...shape })),
  );
  // Each part's own duration: the parts start together but need not stop in the same millisecond.
  const raws = raw as unknown as Array<{ totalCompletedRequests: number; duration: number }>;
  const merged = aggregateResult(raw, { url: urls[0]! });
  return {
    requestsPerSecond: raws.reduce((sum, r) => sum + r.totalCompletedRequests / r.duration, 0),
    p50: merged.latency.p50,
    p99: merged.latency.p99,
    max: merged.latency.max,
    total: raws.reduce((sum, r) => sum + r.totalCompletedRequests, 0),
    non2xx: merged.non2xx,
    errors: merged.errors + merged.timeouts,
  };
}

export async function loadPhase(urls: readonly string[], shape: RequestShape, options: LoadOptions): Promise<LoadResult> {
  urls.forEach(assertLoopback);
  if (urls.length === 0 || urls.length > options.connections) throw new Error(`need 1 to ${options.connections} targets, got ${urls.length}`);
  await once(urls, options.warmup ?? shape, options.connections, options.warmupS);
  options.onMeasure?.('start');
  const result = await once(urls, shape, options.connections, options.durationS);
  options.onMeasure?.('end');
  return result;
}
