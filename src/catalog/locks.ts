import type pg from 'pg';
import { BookkeepingSchema } from '../core/bookkeeping.js';
import { permissionDenied } from '../core/faults.js';
import type { LoggedLock } from '../core/locks.js';
import type { Rider } from './tracker.js';

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

/** The highest relation oid now: relations created after it are the next migration's own. */
const HighestRelation = '(SELECT max(oid)::bigint FROM pg_class)';

/** A table as the catalog snapshot names it, and unquoted (`schema.table`, as history tables are given). */
const Names = `quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname || '.' || c.relname`;

/**
 * Event triggers that record, in the session that runs a migration's DDL (any format: SQL, an ORM,
 * a Python process), the strong locks (SHARE UPDATE EXCLUSIVE and up) that session holds on
 * tables at the end of each DDL statement, with the statement's end (and, with `holdTimes`, its
 * start) and the lock_timeout then in force; and the tables it rewrites, with why. Written in the
 * step's own transaction: a step that fails leaves no trace behind.
 *
 * The switch is a sequence, set in place (no dead rows for every trigger to step over): 0 turns
 * tracing off (up again, rolling everything back: pg_locks is not free), any other value is the
 * highest relation oid when the migration started. Relations above it are the migration's own
 * (oids only grow): a table created in the same step has no traffic yet, and a migration that
 * creates a thousand tables logs nothing for them, however many locks its transaction holds.
 * Each DDL statement pays for one read of pg_locks (its cost grows with the server's lock table,
 * not with the schema) and a lookup of each table it holds strongly.
 */
const installSql = (holdTimes: boolean) => `
CREATE UNLOGGED TABLE IF NOT EXISTS ${S}.lock_log (tbl text, raw text, mode text, tag text, started double precision, at double precision, lock_timeout text, reason int, xid bigint DEFAULT txid_current());
CREATE SEQUENCE IF NOT EXISTS ${S}.lock_switch MINVALUE 0;
SELECT setval('${S}.lock_switch', ${HighestRelation});
ANALYZE ${S}.lock_log;
CREATE OR REPLACE FUNCTION ${S}.note_start() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('pg_migrate_verify.started', (extract(epoch FROM clock_timestamp()) * 1000)::text, true);
END $$;
CREATE OR REPLACE FUNCTION ${S}.log_locks() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
  upto oid := (SELECT last_value FROM ${S}.lock_switch)::oid;
  started double precision;
  ended double precision;
BEGIN
  IF upto = 0 THEN RETURN; END IF;
  started := nullif(current_setting('pg_migrate_verify.started', true), '')::double precision;
  ended := extract(epoch FROM clock_timestamp()) * 1000;
  -- User relations that existed when the migration started; the weak modes (reads, row writes)
  -- block no one.
  INSERT INTO ${S}.lock_log
  SELECT ${Names}, l.mode, tg_tag, started, ended, current_setting('lock_timeout')
    FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
     AND l.relation >= 16384 AND l.relation <= upto
     AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')
     AND c.relkind IN ('r', 'p', 'm', 'f') AND c.relname NOT LIKE 'pg\\_temp\\_%'
     AND n.nspname NOT IN ('pg_toast', 'information_schema', '${S}');
  IF tg_tag = 'CREATE INDEX' THEN
    -- CREATE INDEX CONCURRENTLY has released its SHARE UPDATE EXCLUSIVE by now (it commits on its
    -- own): it held that lock on the table for the whole build. (A plain build's SHARE is stronger.)
    INSERT INTO ${S}.lock_log
    SELECT ${Names}, 'ShareUpdateExclusiveLock', tg_tag, started, ended, current_setting('lock_timeout')
      FROM pg_event_trigger_ddl_commands() d JOIN pg_index i ON i.indexrelid = d.objid
      JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE d.classid = 'pg_class'::regclass AND i.indrelid <= upto;
  END IF;
END $$;
CREATE OR REPLACE FUNCTION ${S}.log_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $$
DECLARE
  upto oid := (SELECT last_value FROM ${S}.lock_switch)::oid;
BEGIN
  IF upto = 0 OR pg_event_trigger_table_rewrite_oid() > upto THEN RETURN; END IF;
  INSERT INTO ${S}.lock_log (tbl, raw, mode, reason)
  SELECT ${Names}, 'rewrite', pg_event_trigger_table_rewrite_reason()
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = pg_event_trigger_table_rewrite_oid();
END $$;
DROP EVENT TRIGGER IF EXISTS ${S}_start;
DROP EVENT TRIGGER IF EXISTS ${S}_locks;
DROP EVENT TRIGGER IF EXISTS ${S}_rewrite;
${
  // Without data in the tables, how long a lock is held says nothing: the start of each statement
  // (one more trigger on every DDL statement) is recorded only when there is seed data.
  holdTimes
    ? `CREATE EVENT TRIGGER ${S}_start ON ddl_command_start WHEN TAG IN (${Tags}) EXECUTE FUNCTION ${S}.note_start();`
    : ''
}
CREATE EVENT TRIGGER ${S}_locks ON ddl_command_end WHEN TAG IN (${Tags}) EXECUTE FUNCTION ${S}.log_locks();
CREATE EVENT TRIGGER ${S}_rewrite ON table_rewrite EXECUTE FUNCTION ${S}.log_rewrite();
`;

/**
 * Installs the lock triggers, with the start of each statement when `holdTimes` (seed data: how
 * long a lock kept the rows waiting); false when the user may not create event triggers (not a
 * superuser).
 */
export async function installLockTrace(client: pg.Client, holdTimes: boolean): Promise<boolean> {
  try {
    await client.query(installSql(holdTimes));
    return true;
  } catch (error) {
    if (permissionDenied(error)) return false;
    throw error;
  }
}

/**
 * What the catalog refresh's take does for the trace (`TakeLocksSql`): take what the steps since
 * the last refresh logged (`take`: they were traced), and, when `tracing` is given, switch tracing
 * on or off for the steps after it.
 */
export function lockTraceRider(take: boolean, tracing?: boolean): Rider | undefined {
  if (!take && tracing === undefined) return undefined;
  return { locks: take, ...(tracing === undefined ? {} : { switch: tracing }) };
}

/**
 * The take function's part for the trace (see `takeFunctionSql`): with p_locks, what the triggers
 * logged, one array per row (\`loggedLocks\`); with p_switch, tracing switched for the steps after
 * it (off, or on from the highest relation oid now, what the next migration finds), its row the
 * value set. It stays small: \`stepTrace\` does the grouping.
 */
export const TakeLocksSql = `
    IF p_locks THEN
      RETURN QUERY WITH lt_log AS (DELETE FROM ${S}.lock_log RETURNING *)
        SELECT 'rider'::text, NULL::text, NULL::oid, NULL::text, NULL::oid, NULL::text, NULL::text, NULL::text, NULL::text,
               jsonb_build_array(l.tbl, l.raw, l.mode, l.tag, l.started, l.at, l.lock_timeout, l.reason, l.xid) FROM lt_log l;
    END IF;
    IF p_switch IS NOT NULL THEN
      RETURN QUERY SELECT 'rider'::text, NULL::text, NULL::oid, NULL::text, NULL::oid, NULL::text, NULL::text, NULL::text, NULL::text,
        to_jsonb(setval('${S}.lock_switch', CASE WHEN p_switch THEN ${HighestRelation} ELSE 0 END));
    END IF;`;

/**
 * Tracing switched on for the next step from within a step's own transaction, as a take's rider
 * switches it after the step (the relations there are then, the step's own among them): for a step
 * whose take waits for the steps after it.
 */
export const SwitchOnSql = `setval('${S}.lock_switch', ${HighestRelation}) AS pgmv_switch`;

/** The rider's values as logged rows (the switch's own row left out). */
export function loggedLocks(values: readonly unknown[]): LoggedLock[] {
  const rows: LoggedLock[] = [];
  for (const v of values) {
    if (!Array.isArray(v)) continue;
    const [table, raw, mode, tag, started, at, lockTimeout, reason] = v as [
      string | null,
      string | null,
      string,
      string | null,
      number | null,
      number | null,
      string | null,
      number | null,
    ];
    rows.push({ table, raw, mode, tag, started, at, lockTimeout, reason });
  }
  return rows;
}
