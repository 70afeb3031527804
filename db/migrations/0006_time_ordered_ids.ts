import { type Kysely, sql } from 'kysely';

/**
 * Time-ordered ids (UUID version 7, RFC 9562) for tasks and events.
 *
 * A random (version 4) id sends every insert to a random leaf of each index keyed by it: the
 * tasks' primary key, the events' event_id and (task_id, id), graphile-worker's job keys
 * ('timeout:<task id>'). Once those indexes outgrow shared_buffers, each insert reads a cold page
 * and dirties it, and each checkpoint writes a full image of every page touched: throughput fell
 * as the tables grew (measured: 5.3 k assignments/s in the first minute of a sustained run, 2.2 k
 * in the tenth). A version 7 id starts with the time in milliseconds, so new entries land on the
 * few rightmost pages that are already in memory, and a task's events sit next to each other.
 *
 * Existing ids stay as they are; only new rows get the new default. Dispatch's API creates its
 * ids in the application (src/db/ids.ts) with the same layout, so they sort with these.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE FUNCTION dispatch_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  -- A random UUID with its first 48 bits replaced by Unix time in milliseconds, and its version
  -- nibble turned from 4 (0100) into 7 (0111) by setting bits 52 and 53.
  SELECT encode(
           set_bit(set_bit(
             overlay(uuid_send(gen_random_uuid())
                     PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                     FROM 1 FOR 6),
             52, 1), 53, 1),
           'hex')::uuid
$$;
COMMENT ON FUNCTION dispatch_uuid_v7() IS 'A UUID version 7: 48 bits of Unix milliseconds, then random bits. New ids sort by creation time, which keeps index inserts on recent pages.';

ALTER TABLE dispatch_tasks ALTER COLUMN id SET DEFAULT dispatch_uuid_v7();
ALTER TABLE dispatch_task_events ALTER COLUMN event_id SET DEFAULT dispatch_uuid_v7();
`,
    )
    .execute(db);
}
