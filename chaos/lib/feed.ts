import { randomBytes } from 'node:crypto';
import { ChaosClient, NoReplicaAnswered, type ClientStats } from './client.js';
import { taskSpec, type ChaosProfile } from './profile.js';

export const CHAOS_REQUESTER = 'chaos-requester';
const BURST_EVERY_MS = 3_000;

export interface FeedResult {
  /** Task ids by chaos index (undefined: never created). */
  ids: (string | undefined)[];
  /** Creations answered 200 (an Idempotency-Key replay after a retried request). */
  replays: number;
  failures: string[];
  durationMs: number;
  /** The creation client's answers: a 5xx that a retry got past is still a finding. */
  stats: ClientStats;
}

/**
 * Creates the profile's tasks over REST in bursts spread over feedMs, through whichever replicas
 * are up. Each request carries an Idempotency-Key, so one retried on another replica (the first
 * died, or the database restarted, before the answer) cannot create a second task.
 */
export async function feedTasks(
  profile: ChaosProfile,
  urls: () => readonly string[],
  { deadline, concurrency = 16, onCreated }: { deadline: number; concurrency?: number; onCreated?: (created: number) => void },
): Promise<FeedResult> {
  const client = new ChaosClient(urls, { deadline: () => deadline });
  const run = randomBytes(4).toString('hex');
  const ids: (string | undefined)[] = new Array(profile.tasks).fill(undefined);
  const failures: string[] = [];
  let replays = 0;
  let created = 0;
  let next = 0;
  const started = Date.now();
  // Bursts rather than a trickle: each one outruns the agents for a moment, so the queue builds
  // up and agents are filled to their limits (which the audit then checks).
  const bursts = Math.max(1, Math.round(profile.feedMs / BURST_EVERY_MS));
  const perBurst = Math.ceil(profile.tasks / bursts);
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= profile.tasks) return;
      const due = started + Math.floor(i / perBurst) * BURST_EVERY_MS;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const spec = taskSpec(profile, i);
      const body = {
        title: `chaos task ${i}`,
        scope: spec.scope,
        priority: spec.priority,
        timeout_ms: spec.timeoutMs,
        max_retries: spec.maxRetries,
        context: { chaos_index: i },
      };
      try {
        const answer = await client.call<{ id: string }>('POST', '/api/v1/tasks', {
          agent: CHAOS_REQUESTER,
          body,
          prefer: i,
          headers: { 'idempotency-key': `chaos-${run}-${i}` },
        });
        if (answer.status === 201 || answer.status === 200) {
          ids[i] = answer.body.id;
          if (answer.status === 200) replays++;
          onCreated?.(++created);
        } else if (failures.length < 20) failures.push(`task ${i}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
      } catch (error) {
        if (!(error instanceof NoReplicaAnswered)) throw error;
        if (failures.length < 20) failures.push(`task ${i}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, profile.tasks) }, worker));
  return { ids, replays, failures, durationMs: Date.now() - started, stats: client.stats };
}
