import { Batcher } from '../db/batcher.js';
import type { Db } from '../db/database.js';
import type { AgentRow } from '../db/database.js';
import { registerAgents, type Registration } from './agent.queries.js';

/**
 * Heartbeats in one statement. A swarm's agents heartbeat together (they start together), and
 * each upsert waits while an assignment batch holds the agents' rows: one call per agent held a
 * pool connection each while it waited, and fifty of them took every connection of the replica,
 * so creates and the assigner's next batch queued behind them. Measured at 1,000 creates/s with
 * 50 agents heartbeating every 10 s (`npm run bench -- --only latency`): create-to-assigned p99
 * 50 to 76 ms with one upsert per heartbeat, 38 to 48 ms with no heartbeats at all, 36 to 54 ms
 * with heartbeats batched.
 */
const batchers = new WeakMap<Db, Batcher<Registration, AgentRow>>();

function batcherFor(db: Db): Batcher<Registration, AgentRow> {
  let batcher = batchers.get(db);
  if (!batcher) {
    batcher = new Batcher(async (registrations) => {
      // One row per agent in a statement; if an agent heartbeats twice in one batch, its last call wins.
      const latest = new Map(registrations.map((r) => [r.name, r]));
      const byName = new Map((await registerAgents(db, [...latest.values()])).map((row) => [row.name, row]));
      return registrations.map((r) => byName.get(r.name)!);
    }, { maxInFlight: 1 });
    batchers.set(db, batcher);
  }
  return batcher;
}

/** Registers an agent or records its heartbeat, batched with the others arriving meanwhile. */
export function registerAgentBatched(db: Db, registration: Registration): Promise<AgentRow> {
  return db.isTransaction ? registerAgents(db, [registration]).then((rows) => rows[0]!) : batcherFor(db).submit(registration);
}
