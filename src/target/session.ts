import pg from 'pg';
import type { Exclusions } from '../catalog/tracker.js';
import { readSnapshot } from '../catalog/tracker.js';
import { CannotCheck, messageOf } from '../core/errors.js';
import { Inputs } from '../core/inputs.js';
import { redactUrls } from '../core/redact.js';
import type { SchemaSnapshot } from '../core/schema.js';

/** How long the gate waits for a lock on the target before it stops: never long enough to hold up a deploy. */
export const TargetLockTimeoutMs = 2_000;
/** How long one read on the target may take. */
const TargetStatementTimeoutMs = 60_000;

/** The application name every session on the target has, so a DBA sees who it is. */
export const TargetApplicationName = 'pg-migrate-verify (read-only deploy gate)';

/** The live size of a table on the target, from the planner's estimate and the relation's files. */
export interface TableSize {
  table: string;
  rows: number;
  bytes: number;
}

/**
 * A session on the target database that cannot write: every transaction is read-only by the
 * session's own settings (not the role's), waits at most 2 s for a lock and 60 s for a statement,
 * and says who it is in `application_name`. Works on a hot standby and with a role that may read
 * only the history table (the catalog is readable by every role).
 */
export class TargetSession {
  private constructor(
    private readonly client: pg.Client,
    /** The URL with its password masked, for messages. */
    readonly shown: string,
  ) {}

  static async open(url: string): Promise<TargetSession> {
    const shown = redactUrls(url);
    const client = new pg.Client({
      connectionString: url,
      application_name: TargetApplicationName,
      connectionTimeoutMillis: 10_000,
      options: [
        '-c default_transaction_read_only=on',
        `-c lock_timeout=${TargetLockTimeoutMs}`,
        `-c statement_timeout=${TargetStatementTimeoutMs}`,
        '-c idle_in_transaction_session_timeout=60000',
      ].join(' '),
    });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => {});
      throw new CannotCheck(
        `Could not connect to the target database '${shown}' (input '${Inputs.TargetDatabaseUrl}'): ${redactUrls(messageOf(error))}. Check that it is reachable from this runner, and the URL, user and password.`,
        { cause: error },
      );
    }
    return new TargetSession(client, shown);
  }

  /** Runs one read; a lock held by someone else, or a lost connection, is a clear "could not check". */
  async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[] = [],
    what = 'the target',
  ): Promise<R[]> {
    try {
      return (await this.client.query<R>(text, values)).rows;
    } catch (error) {
      throw this.failure(error, what);
    }
  }

  /** True when `schema.table` exists (a name lookup: it needs no privilege on the table). */
  async exists(table: string): Promise<boolean> {
    const rows = await this.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
      quoted(table),
    ]);
    return rows[0]?.found ?? false;
  }

  /** The whole schema, read with the same statement as every other check. */
  async snapshot(exclusions: Exclusions): Promise<SchemaSnapshot> {
    try {
      // A target's URL may lead through a pooler: no statement kept in a session.
      return await readSnapshot(this.client, exclusions, { prepared: false });
    } catch (error) {
      throw this.failure(error, 'its catalog');
    }
  }

  /** Estimated rows and total bytes of the tables that exist on the target. */
  async tableSizes(tables: readonly string[]): Promise<TableSize[]> {
    if (!tables.length) return [];
    const rows = await this.query<{ name: string; rows: string; bytes: string }>(
      `SELECT t.name, greatest(c.reltuples, 0)::bigint AS rows, pg_total_relation_size(c.oid) AS bytes
         FROM unnest($1::text[], $2::text[]) AS t(name, quoted)
         JOIN pg_class c ON c.oid = to_regclass(t.quoted)`,
      [tables, tables.map(quoted)],
      'the sizes of the tables the pending migrations touch',
    );
    return rows.map((r) => ({ table: r.name, rows: Number(r.rows), bytes: Number(r.bytes) }));
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }

  private failure(error: unknown, what: string): CannotCheck {
    const code = (error as { code?: string }).code;
    if (code === '55P03')
      return new CannotCheck(
        `The target database '${this.shown}' holds a lock on ${what} that the gate would have to wait for (a deploy or a DDL statement running there?). The gate stopped after ${TargetLockTimeoutMs / 1000} s rather than queue behind it and hold up production. Run it again once that is done.`,
        { cause: error },
      );
    return new CannotCheck(
      `Reading ${what} on the target database '${this.shown}' failed: ${redactUrls(messageOf(error))}. The gate only reads; check that the role may connect and read the history table (README: the GRANTs of a read-only role).`,
      { cause: error },
    );
  }
}

/** `schema.table` as an identifier `to_regclass` reads exactly (mixed case kept: "SequelizeMeta"). */
export function quoted(table: string): string {
  const [schema, name] = table.includes('.') ? table.split('.', 2) : ['public', table];
  const q = (s: string) => `"${(s ?? '').replaceAll('"', '""')}"`;
  return `${q(schema as string)}.${q(name as string)}`;
}
