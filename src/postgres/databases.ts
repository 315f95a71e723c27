import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { ScratchDatabase } from './types.js';

/** Quotes an SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The same server URL pointed at another database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** A fresh name for a scratch database, unique across concurrent runs on one server. */
export function scratchName(prefix = 'pgmv'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/**
 * Creates and drops scratch databases through one maintenance connection, and remembers
 * what it created so that `dropAll` can leave a shared server as it found it.
 */
export class DatabaseFactory {
  private admin: pg.Client | undefined;
  private readonly created = new Set<string>();
  private major: number | undefined;

  /**
   * `socketDir`: where the server's Unix socket is, when the tool may use it for its own sessions:
   * a round trip over it costs the tool and the server less than one over TCP, and a walk makes
   * thousands. What the migrations and their tools are given stays the TCP URL.
   */
  constructor(
    private readonly adminUrl: string,
    private readonly socketDir?: string,
  ) {}

  /** `url` as the tool's own sessions reach it (over the Unix socket where there is one). */
  private local(url: string): string {
    return this.socketDir ? overSocket(url, this.socketDir) : url;
  }

  private async client(): Promise<pg.Client> {
    if (!this.admin) {
      const client = new pg.Client({ connectionString: this.local(this.adminUrl) });
      // A server stopped under us must not crash the process through an unhandled 'error' event;
      // a session it ended (a restart after a crash) is replaced on the next use.
      const forget = () => {
        if (this.admin === client) this.admin = undefined;
      };
      client.on('error', forget);
      client.on('end', forget);
      await client.connect();
      this.admin = client;
    }
    return this.admin;
  }

  /** One statement at a time on the maintenance connection (ranges of a walk create databases at once). */
  private queue: Promise<unknown> = Promise.resolve();
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => {});
    return next;
  }

  create(options: { template?: string; name?: string } = {}): Promise<ScratchDatabase> {
    return this.serial(() => this.createNow(options));
  }

  private async createNow(options: { template?: string; name?: string }): Promise<ScratchDatabase> {
    const name = options.name ?? scratchName();
    const template = options.template ?? 'template0';
    const client = await this.client();
    // A copy of one of ours (a checkpoint): copying the files is three times faster than
    // PostgreSQL 15's default of writing every block to the WAL (14 copies files anyway).
    this.major ??= Math.floor(
      Number((await client.query('SHOW server_version_num')).rows[0]?.server_version_num) / 10000,
    );
    const strategy = template !== 'template0' && this.major >= 15 ? ' STRATEGY FILE_COPY' : '';
    await client.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(template)}${strategy}`);
    this.created.add(name);
    const url = withDatabase(this.adminUrl, name);
    return { name, url, localUrl: this.local(url), drop: () => this.drop(name) };
  }

  drop(name: string): Promise<void> {
    return this.serial(() => this.dropNow(name));
  }

  private async dropNow(name: string): Promise<void> {
    const client = await this.client();
    // FORCE ends sessions a failed migration may have left open (Postgres 13+).
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    this.created.delete(name);
  }

  async dropAll(): Promise<void> {
    for (const name of [...this.created]) {
      await this.drop(name).catch(() => {});
    }
  }

  async close(): Promise<void> {
    const client = this.admin;
    this.admin = undefined;
    if (client) await client.end().catch(() => {});
  }
}

/** `url` reaching its server through the Unix socket in `dir` (the port names the socket). */
export function overSocket(url: string, dir: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('host', dir);
  return parsed.toString();
}

/** `server_version` of the server at `url`, and its major. */
export async function serverVersion(
  url: string,
  timeoutMs?: number,
): Promise<{ version: string; major: number }> {
  const client = new pg.Client({
    connectionString: url,
    ...(timeoutMs ? { connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs } : {}),
  });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string; n: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('server_version_num') AS n",
    );
    const row = rows[0];
    if (!row) throw new Error('server_version is empty');
    return { version: row.v.split(' ')[0] ?? row.v, major: Math.floor(Number(row.n) / 10000) };
  } finally {
    await client.end().catch(() => {});
  }
}

/** The application_name of our own catalog session on a scratch database: a step's timeout never cancels it. */
export const CatalogSessionName = 'pg-migrate-verify (catalog reads)';

/** Cancels every running statement in a database (the step timeout) but our catalog session's, from a separate connection. */
export function cancelQueries(adminUrl: string, database: string): Promise<void> {
  return onOwnConnection(
    adminUrl,
    'SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND application_name IS DISTINCT FROM $2',
    [database, CatalogSessionName],
  );
}

/** Runs one statement on a connection of its own (never one a step may be using), then closes it. */
async function onOwnConnection(url: string, sql: string, values: unknown[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    await client.query(sql, values);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Ends every session on a database (a runner's pool, a driver that kept its connection), so that
 * it can be the template of a copy; from a separate connection.
 */
export function endSessions(adminUrl: string, database: string): Promise<void> {
  return onOwnConnection(
    adminUrl,
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [database],
  );
}
