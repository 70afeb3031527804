import { type Kysely, sql } from 'kysely';

/**
 * The assignment feed stops waiting for transactions of other databases. A stream sends an event
 * only once every transaction with a lower id has ended (migration 0010: then nothing can commit
 * behind it), and it took "every transaction" from pg_current_snapshot(), which lists the running
 * transactions of the whole server. One transaction left open in any database of the server (a
 * psql session's BEGIN; UPDATE ...; in another application's database) held every agent's
 * stream back until it ended, and made every connect that starts afresh wait 30 s and answer
 * 503. Only a transaction of this database can write its audit trail, so the feed now waits
 * for the running transactions it cannot place in another database: a transaction is passed over
 * only when pg_stat_activity shows it in a session connected to another database. One it cannot
 * place (a session whose transaction id the reading role may not see: grant it pg_read_all_stats;
 * a prepared transaction) is waited for, as before. Forward-only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql
    .raw(
      String.raw`
CREATE FUNCTION dispatch_feed_running(snap pg_snapshot) RETURNS SETOF xid8
LANGUAGE sql STABLE AS $$
  SELECT x FROM pg_snapshot_xip(snap) AS x
   WHERE xid(x) NOT IN (
     -- pg_stat_activity's own source, without the view's joins (a fifth of its cost per call).
     SELECT a.backend_xid FROM pg_stat_get_activity(NULL) a
      WHERE a.backend_xid IS NOT NULL
        AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))
$$;
COMMENT ON FUNCTION dispatch_feed_running(pg_snapshot) IS 'The transactions running in snap that may write this database: all of pg_snapshot_xip(snap) but those pg_stat_activity shows in sessions connected to other databases (a transaction id the reading role may not see counts as this database''s; grant pg_read_all_stats). What the assignment feed waits for (migration 0024).';

CREATE FUNCTION dispatch_feed_horizon(snap pg_snapshot) RETURNS xid8
LANGUAGE sql STABLE AS $$
  SELECT coalesce(min(x), pg_snapshot_xmax(snap)) FROM dispatch_feed_running(snap) AS x
$$;
COMMENT ON FUNCTION dispatch_feed_horizon(pg_snapshot) IS 'Every transaction of this database below this id had ended when snap was taken (pass the calling statement''s, pg_current_snapshot()): the assignment feed sends the events written below it, in (tx, id) order, and nothing can commit behind them later. Transactions of other databases do not hold it back, as they do pg_snapshot_xmin(snap) (migration 0024).';
`,
    )
    .execute(db);
}
