import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { type AssertionRun, assertionFindings, type Direction, type Side } from '../core/assertions.js';
import { CannotCheck, messageOf, unreadableFolder } from '../core/errors.js';
import type { NewFinding } from '../core/findings.js';
import { Inputs } from '../core/inputs.js';
import { Messages } from '../core/messages.js';
import { lineAt, loadSqlParser, splitStatements } from '../core/sql-text.js';
import { exportOf, importModule, ModuleExtensions } from '../modules.js';
import { fillCommand, outputTail, pgEnv, runCommand } from '../shell.js';
import type { SetContext } from './context.js';
import type { MigrationRecord } from './record.js';

/** One assertion file for one migration and direction. */
export interface Assertion {
  id: string;
  direction: Direction;
  /** Relative to the working directory, for reports. */
  file: string;
  /** Absolute. */
  path: string;
  kind: 'sql' | 'module' | 'command';
}

/** `<id>.up.sql`, `<id>_down.ts`, `<id>_up.py`, ... */
const AssertionName = /^(.+?)[._](up|down)(\.[A-Za-z0-9]+)$/;

/**
 * Finds the assertions in `dir`: by migration id, and findings for files whose id matches no
 * migration. Files of other languages need `assert-command`.
 */
export async function discoverAssertions(
  dir: string,
  workingDirectory: string,
  ids: readonly string[],
  command: string | undefined,
): Promise<{ byMigration: Map<string, Assertion[]>; findings: NewFinding[] }> {
  const shownDir = path.relative(workingDirectory, dir) || '.';
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  } catch (error) {
    throw unreadableFolder(
      Inputs.AssertionsDir,
      shownDir,
      error,
      'Set it to the folder that holds your per-migration assertions.',
    );
  }
  const known = new Set(ids);
  const byMigration = new Map<string, Assertion[]>();
  const findings: NewFinding[] = [];
  for (const name of names.sort()) {
    const match = AssertionName.exec(name);
    if (!match) continue;
    const [, id = '', direction, ext = ''] = match;
    const file = path.join(shownDir, name);
    const kind = ext === '.sql' ? 'sql' : ModuleExtensions.includes(ext) ? 'module' : 'command';
    if (kind === 'command' && !command) {
      throw new CannotCheck(
        `'${file}' is an assertion in a language this tool does not run itself. Set '${Inputs.AssertCommand}' to the command that runs it, e.g. "python3 -m unittest {file}" ({id}, {direction} and {file} are filled in).`,
      );
    }
    if (!known.has(id)) {
      findings.push({
        check: 'assertions',
        severity: 'error',
        file,
        message: Messages.orphanAssertion(file, id),
      });
      continue;
    }
    const list = byMigration.get(id) ?? [];
    list.push({ id, direction: direction as Direction, file, path: path.join(dir, name), kind });
    byMigration.set(id, list);
  }
  return { byMigration, findings };
}

export interface AssertionOptions {
  databaseUrl: string;
  timeoutMs: number;
  command?: string;
  workingDirectory: string;
  env: NodeJS.ProcessEnv;
}

type Outcome = Omit<AssertionRun, 'file' | 'direction' | 'side'>;

/** Runs assertions against one database. Nothing an assertion does in SQL is kept: each runs in a transaction that is rolled back. */
export class AssertionRunner {
  private readonly modules = new Map<string, Promise<(client: pg.Client) => unknown>>();

  constructor(private readonly options: AssertionOptions) {}

  async run(assertion: Assertion, side: Side): Promise<AssertionRun> {
    const started = performance.now();
    let outcome: Omit<Outcome, 'ms'>;
    try {
      outcome =
        assertion.kind === 'sql'
          ? await this.runSql(assertion)
          : assertion.kind === 'module'
            ? await this.runModule(assertion)
            : await this.runCommand(assertion);
    } catch (error) {
      outcome = { passed: false, reason: messageOf(error) };
    }
    return {
      file: assertion.file,
      direction: assertion.direction,
      side,
      ...outcome,
      ms: performance.now() - started,
    };
  }

  /** A client whose statements stop at the step timeout; runs `work` in a transaction that is rolled back. */
  private async inTransaction<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({
      connectionString: this.options.databaseUrl,
      options: `-c statement_timeout=${this.options.timeoutMs}`,
    });
    client.on('error', () => {});
    await client.connect();
    let timer: NodeJS.Timeout | undefined;
    try {
      await client.query('BEGIN');
      // Code outside SQL (a module's own loop) is not stopped by statement_timeout.
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimedOut()), this.options.timeoutMs + 1_000);
      });
      return await Promise.race([work(client), deadline]);
    } finally {
      clearTimeout(timer);
      await Promise.race([
        client
          .query('ROLLBACK')
          .catch(() => {})
          .then(() => client.end()),
        new Promise((resolve) => setTimeout(resolve, 2_000).unref()),
      ]).catch(() => {});
    }
  }

  private async runSql(assertion: Assertion): Promise<Omit<Outcome, 'ms'>> {
    const text = await readFile(assertion.path, 'utf8');
    await loadSqlParser();
    const statements = splitStatements(text) ?? [{ sql: text, start: 0 }];
    if (!statements.length) return { passed: false, reason: 'the file has no statement to check' };
    try {
      return await this.inTransaction(async (client) => {
        for (const statement of statements) {
          const line = lineAt(text, statement.start);
          let rows: unknown[][];
          try {
            rows = (await client.query({ text: statement.sql, rowMode: 'array' })).rows as unknown[][];
          } catch (error) {
            if ((error as pg.DatabaseError).code === '57014') return { passed: false, timedOut: true, line };
            return {
              passed: false,
              line,
              reason: `the statement at line ${line} failed: ${messageOf(error)}`,
            };
          }
          const shown = short(statement.sql);
          if (rows.length !== 1)
            return {
              passed: false,
              line,
              reason: `the statement at line ${line} returned ${rows.length} rows, not one (${shown})`,
            };
          if (rows[0]?.[0] !== true)
            return {
              passed: false,
              line,
              reason: `the statement at line ${line} returned ${String(rows[0]?.[0])}, not true (${shown})`,
            };
        }
        return { passed: true };
      });
    } catch (error) {
      if (error instanceof TimedOut) return { passed: false, timedOut: true };
      throw error;
    }
  }

  private async runModule(assertion: Assertion): Promise<Omit<Outcome, 'ms'>> {
    let fn: (client: pg.Client) => unknown;
    try {
      fn = await this.load(assertion);
    } catch (error) {
      return { passed: false, reason: `could not load it: ${messageOf(error)}` };
    }
    try {
      await this.inTransaction(async (client) => fn(client));
      return { passed: true };
    } catch (error) {
      if (error instanceof TimedOut || (error as pg.DatabaseError).code === '57014')
        return { passed: false, timedOut: true };
      return { passed: false, reason: messageOf(error) };
    }
  }

  /** The module's default export (TypeScript runs without a build step). */
  private load(assertion: Assertion): Promise<(client: pg.Client) => unknown> {
    let loading = this.modules.get(assertion.path);
    if (!loading) {
      loading = importModule(assertion.path).then((mod) => {
        const fn = exportOf(mod, 'default');
        if (typeof fn !== 'function')
          throw new Error(
            'it has no default export that is a function (export default async (db) => { ... })',
          );
        return fn as (client: pg.Client) => unknown;
      });
      this.modules.set(assertion.path, loading);
    }
    return loading;
  }

  private async runCommand(assertion: Assertion): Promise<Omit<Outcome, 'ms'>> {
    const command = fillCommand(this.options.command ?? '', {
      id: assertion.id,
      direction: assertion.direction,
      file: assertion.file,
    });
    const result = await runCommand(command, {
      cwd: this.options.workingDirectory,
      env: { ...this.options.env, ...pgEnv(this.options.databaseUrl) },
      timeoutMs: this.options.timeoutMs,
    });
    if (result.timedOut) return { passed: false, timedOut: true };
    if (result.code === 0) return { passed: true };
    const tail = outputTail(result);
    return {
      passed: false,
      reason: `\`${command}\` exited with ${result.code ?? 'a signal'}${tail ? `:\n${tail}` : ''}`,
    };
  }
}

class TimedOut extends Error {}

function short(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}

/**
 * Files the findings of a migration's assertion runs once it is done; true when every run went as
 * it should.
 */
export function assertionVerdict(ctx: SetContext, record: MigrationRecord): boolean {
  const runs = record.report.assertions;
  if (!runs?.length) return true;
  const found = assertionFindings(record.migration.id, runs, ctx.assertionsStrict);
  for (const f of found) ctx.finding(f);
  return found.length === 0;
}
