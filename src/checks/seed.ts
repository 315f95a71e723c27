import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import type { Exclusions } from '../catalog/tracker.js';
import { messageOf } from '../core/errors.js';
import { outputTail, pgEnv, runCommand } from '../shell.js';

/** Seed data: an SQL file or a command, applied once the migration `after` is applied. */
export interface Seed {
  /** Migration id after which the seed applies. */
  after: string;
  /** SQL file (absolute). */
  file?: string;
  /** Shell command that loads rows into DATABASE_URL. */
  command?: string;
}

/** Loads the seed into the database; returns why it failed, or undefined. */
export async function applySeed(
  seed: Seed,
  databaseUrl: string,
  options: { workingDirectory: string; timeoutMs: number; env: NodeJS.ProcessEnv },
): Promise<string | undefined> {
  if (seed.command) {
    const result = await runCommand(seed.command, {
      cwd: options.workingDirectory,
      env: { ...options.env, ...pgEnv(databaseUrl) },
      timeoutMs: options.timeoutMs,
    });
    if (result.timedOut) return `\`${seed.command}\` did not finish within the step timeout`;
    if (result.code === 0) return undefined;
    const tail = outputTail(result, 20);
    return `\`${seed.command}\` exited with ${result.code ?? 'a signal'}${tail ? `:\n${tail}` : ''}`;
  }
  const shown = path.relative(options.workingDirectory, seed.file ?? '') || seed.file;
  let text: string;
  try {
    text = await readFile(seed.file ?? '', 'utf8');
  } catch (error) {
    return `'${shown}' cannot be read (${messageOf(error)})`;
  }
  const client = new pg.Client({
    connectionString: databaseUrl,
    options: `-c statement_timeout=${options.timeoutMs}`,
  });
  client.on('error', () => {});
  await client.connect();
  try {
    // One transaction: a seed that fails part-way leaves nothing behind.
    await client.query(`BEGIN;\n${text}\n;COMMIT`);
    return undefined;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    return `'${shown}' failed: ${messageOf(error)}`;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Rows in every table of the schema under test (`schema.table` -> count). */
export async function rowCounts(client: pg.Client, exclusions: Exclusions): Promise<Map<string, number>> {
  const { rows: tables } = await client.query<{ name: string; quoted: string }>(
    `SELECT n.nspname || '.' || c.relname AS name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS quoted
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        AND NOT (n.nspname = ANY ($1)) AND NOT (n.nspname || '.' || c.relname = ANY ($2))
        AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')`,
    [exclusions.schemas, exclusions.tables],
  );
  const counts = new Map<string, number>();
  if (!tables.length) return counts;
  const sql = tables
    .map((t, i) => `SELECT ${i} AS i, count(*)::bigint AS n FROM ${t.quoted}`)
    .join(' UNION ALL ');
  const { rows } = await client.query<{ i: number; n: string }>(sql);
  for (const row of rows) counts.set((tables[row.i] as { name: string }).name, Number(row.n));
  return counts;
}
