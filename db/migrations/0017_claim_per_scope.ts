import { type Kysely, sql } from 'kysely';

/**
 * The claim walks each servable scope's pending tasks on its own (scope, rank, id) instead of one
 * rank-ordered walk of every pending task filtered by scope. On the single walk, a backlog no free
 * agent can serve (a paused scope, a scope whose agents are gone, 100,000 requeued tasks of a
 * broken service) that ranks ahead of the served work was stepped over entry by entry on every
 * claim: 30 ms per claim with 100,000 such tasks ahead of 20 servable ones (bench/scenarios/
 * bulk.ts showed the swarm's other work 7x slower during a bulk requeue). Per scope, a claim reads
 * at most its batch size of entries in each servable scope, whatever waits elsewhere.
 *
 * Forward-only. The index replaces dispatch_tasks_pending_rank_idx (nothing else reads it).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE INDEX dispatch_tasks_pending_scope_rank_idx ON dispatch_tasks (scope, rank, id) WHERE status = 'pending';
COMMENT ON INDEX dispatch_tasks_pending_scope_rank_idx IS 'The claim: each scope''s pending tasks in rank (aging) order.';
DROP INDEX dispatch_tasks_pending_rank_idx;
`,
    )
    .execute(db);
}
