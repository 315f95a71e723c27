import type pg from 'pg';
import { BookkeepingSchema } from '../core/bookkeeping.js';
import type { StepTrace } from '../core/locks.js';

const S = BookkeepingSchema;

/** The statements that can lock or rewrite an existing table: the only ones worth a look at pg_locks. */
const Tags = [
  'ALTER TABLE',
  'CREATE INDEX',
  'DROP INDEX',
  'ALTER INDEX',
  'CREATE TABLE',
  'CREATE TABLE AS',
  'DROP TABLE',
  'CREATE TRIGGER',
  'DROP TRIGGER',
  'CREATE RULE',
  'DROP RULE',
  'CREATE POLICY',
  'ALTER POLICY',
  'DROP POLICY',
  'REFRESH MATERIALIZED VIEW',
  'ALTER MATERIALIZED VIEW',
  'ALTER FOREIGN TABLE',
]
  .map((t) => `'${t}'`)
  .join(', ');

/**
 * Event triggers that record, in the session that runs a migration's DDL (any format: SQL, an ORM,
 * a Python process), the table locks that session holds at the end of each DDL statement, with the
 * statement's start and end and the lock_timeout then in force; and the tables it rewrites, with
 * why. Written in the step's own transaction: a step that fails leaves no trace behind.
 */
const InstallSql = `
CREATE TABLE IF NOT EXISTS ${S}.lock_log (tbl text, raw text, mode text, tag text, started double precision, at double precision, lock_timeout text);
CREATE TABLE IF NOT EXISTS ${S}.rewrite_log (tbl text, raw text, reason int);
-- Off while steps run whose locks nobody reads (up again, rolling everything back): pg_locks is not free.
CREATE TABLE IF NOT EXISTS ${S}.lock_trace (tracing boolean NOT NULL);
INSERT INTO ${S}.lock_trace SELECT true WHERE NOT EXISTS (SELECT FROM ${S}.lock_trace);
ANALYZE ${S}.lock_log;
ANALYZE ${S}.rewrite_log;
CREATE OR REPLACE FUNCTION ${S}.note_start() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT tracing FROM ${S}.lock_trace) THEN
    PERFORM set_config('pg_migrate_verify.started', (extract(epoch FROM clock_timestamp()) * 1000)::text, true);
  END IF;
END $$;
CREATE OR REPLACE FUNCTION ${S}.log_locks() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT (SELECT tracing FROM ${S}.lock_trace) THEN RETURN; END IF;
  INSERT INTO ${S}.lock_log
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname || '.' || c.relname, l.mode, tg_tag,
         nullif(current_setting('pg_migrate_verify.started', true), '')::double precision,
         extract(epoch FROM clock_timestamp()) * 1000, current_setting('lock_timeout')
    FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
     AND c.relkind IN ('r', 'p', 'm', 'f') AND c.relname NOT LIKE 'pg\\_temp\\_%'
     AND n.nspname NOT IN ('pg_catalog', 'pg_toast', 'information_schema', '${S}');
  -- CREATE INDEX CONCURRENTLY has released its SHARE UPDATE EXCLUSIVE by now (it commits on its
  -- own): it held that lock on the table for the whole build, so it is recorded as held.
  INSERT INTO ${S}.lock_log
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname || '.' || c.relname,
         'ShareUpdateExclusiveLock', tg_tag,
         nullif(current_setting('pg_migrate_verify.started', true), '')::double precision,
         extract(epoch FROM clock_timestamp()) * 1000, current_setting('lock_timeout')
    FROM pg_event_trigger_ddl_commands() d JOIN pg_index i ON i.indexrelid = d.objid
    JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE d.command_tag = 'CREATE INDEX' AND d.classid = 'pg_class'::regclass
     AND NOT EXISTS (SELECT FROM pg_locks l WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.relation = i.indrelid);
END $$;
CREATE OR REPLACE FUNCTION ${S}.log_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT (SELECT tracing FROM ${S}.lock_trace) THEN RETURN; END IF;
  INSERT INTO ${S}.rewrite_log
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname || '.' || c.relname,
         pg_event_trigger_table_rewrite_reason()
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_event_trigger_table_rewrite_oid();
END $$;
DROP EVENT TRIGGER IF EXISTS ${S}_start;
DROP EVENT TRIGGER IF EXISTS ${S}_locks;
DROP EVENT TRIGGER IF EXISTS ${S}_rewrite;
CREATE EVENT TRIGGER ${S}_start ON ddl_command_start WHEN TAG IN (${Tags}) EXECUTE FUNCTION ${S}.note_start();
CREATE EVENT TRIGGER ${S}_locks ON ddl_command_end WHEN TAG IN (${Tags}) EXECUTE FUNCTION ${S}.log_locks();
CREATE EVENT TRIGGER ${S}_rewrite ON table_rewrite EXECUTE FUNCTION ${S}.log_rewrite();
`;

/**
 * Reads and clears what the triggers recorded: one row per table and lock mode, one per rewritten
 * table ($1: history tables left out); and turns tracing on or off for the steps that follow ($2).
 */
const TakeSql = `
WITH s AS (UPDATE ${S}.lock_trace SET tracing = $2), l AS (DELETE FROM ${S}.lock_log RETURNING *), r AS (DELETE FROM ${S}.rewrite_log RETURNING *)
SELECT 'lock' AS kind, tbl, mode, min(started) AS started, max(at) AS ended,
       array_agg(DISTINCT tag) AS tags, (array_agg(lock_timeout ORDER BY at))[1] IN ('0', '0ms') AS untimed,
       count(*)::int AS seen, NULL::int AS reason
  FROM l WHERE NOT (raw = ANY ($1)) GROUP BY tbl, mode
UNION ALL
SELECT 'rewrite', tbl, NULL, NULL, NULL, NULL, NULL, NULL, bit_or(reason) FROM r WHERE NOT (raw = ANY ($1)) GROUP BY tbl`;

/** Installs the lock triggers; false when the user may not create event triggers (not a superuser). */
export async function installLockTrace(client: pg.Client): Promise<boolean> {
  try {
    await client.query(InstallSql);
    return true;
  } catch (error) {
    if ((error as pg.DatabaseError).code === '42501') return false;
    throw error;
  }
}

/**
 * What the steps since the last call did to tables, their locks and rewrites; `historyTables`
 * (`schema.table`, the migration tool's own) are left out.
 */
export async function takeLockTrace(
  client: pg.Client,
  historyTables: readonly string[],
  /** Whether the steps after this one are traced. */
  next = true,
): Promise<StepTrace> {
  const { rows } = await client.query<{
    kind: string;
    tbl: string;
    mode: string;
    started: number | null;
    ended: number;
    tags: string[];
    untimed: boolean;
    seen: number;
    reason: number;
  }>({ name: 'pgmv-take-locks', text: TakeSql, values: [historyTables, next] });
  return {
    locks: rows
      .filter((r) => r.kind === 'lock')
      .map((r) => ({
        table: r.tbl,
        mode: r.mode,
        commands: r.tags,
        ...(r.started !== null ? { started: Number(r.started) } : {}),
        ended: Number(r.ended),
        untimed: r.untimed,
        seen: r.seen,
      })),
    rewrites: rows
      .filter((r) => r.kind === 'rewrite')
      .map((r) => ({ table: r.tbl, reason: Number(r.reason) })),
  };
}
