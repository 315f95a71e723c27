import type { Dirent } from 'node:fs';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CannotCheck } from '../core/errors.js';
import { Defaults, Inputs } from '../core/inputs.js';
import type { HistoryEntry } from '../core/ordering.js';
import { exportOf, importModule, ModuleExtensions } from '../modules.js';
import { alembicProject, loadAlembicMigrations } from './alembic.js';
import { loadCommandMigrations } from './command.js';
import { loadSequelizeMigrations } from './sequelize.js';
import { loadSqlMigrations } from './sql.js';
import type { Format, LoadedSet } from './types.js';
import { loadUmzugMigrations } from './umzug.js';

type Concrete = Exclude<Format, 'auto'>;

/** What formats that run commands need besides the folder. */
export interface LoadOptions {
  commands?: { list: string; up: string; down?: string; serve?: string };
  /** How to run alembic (default `alembic`). */
  alembicCommand?: string;
  /** An extra variable that gets the database URL (DATABASE_URL and PG* always do). */
  urlVariable?: string;
  env?: NodeJS.ProcessEnv;
  /** Longest a listing command (`list-command`, `alembic history`) may run: the step timeout. */
  timeoutMs?: number;
}

/** Reads a migration set in its format; `auto` detects the format from the folder and says why. */
export async function loadMigrations(
  dir: string,
  format: Format,
  cwd: string,
  options: LoadOptions = {},
): Promise<LoadedSet> {
  let chosen: Concrete = format === 'auto' ? 'sql' : format;
  let why: string | undefined;
  if (format === 'auto') {
    const detected = await detectFormat(dir, cwd);
    if (detected) {
      chosen = detected.format;
      why = detected.why;
    }
  }
  const loaded = await loadFormat(dir, chosen, cwd, options);
  return why ? { ...loaded, layout: `${loaded.layout}; auto: ${why}` } : loaded;
}

function loadFormat(dir: string, format: Concrete, cwd: string, options: LoadOptions): Promise<LoadedSet> {
  switch (format) {
    case 'sql':
      return loadSqlMigrations(dir, cwd);
    case 'sequelize':
      return loadSequelizeMigrations(dir, cwd);
    case 'umzug':
      return loadUmzugMigrations(dir, cwd);
    case 'alembic':
      return loadAlembicMigrations(dir, cwd, {
        command: options.alembicCommand ?? 'alembic',
        urlVariable: options.urlVariable,
        env: options.env ?? process.env,
        timeoutMs: options.timeoutMs ?? Defaults.stepTimeoutMs,
      });
    case 'command':
      if (!options.commands)
        throw new CannotCheck(
          `Input '${Inputs.Format}' is 'command', but '${Inputs.ListCommand}' and '${Inputs.UpCommand}' are not set. Give '${Inputs.ListCommand}' (prints migration ids in order), '${Inputs.UpCommand}' and '${Inputs.DownCommand}' (with {id}).`,
        );
      return loadCommandMigrations({
        commands: options.commands,
        workingDirectory: cwd,
        env: options.env ?? process.env,
        timeoutMs: options.timeoutMs ?? Defaults.stepTimeoutMs,
      });
  }
}

/**
 * Which format a folder holds, from its files: SQL files, sequelize-cli modules (they take a
 * queryInterface), umzug modules (they take a context). Undefined when nothing matches (the SQL
 * loader then says what it expected); an error naming the candidates when several do.
 */
export async function detectFormat(
  dir: string,
  cwd: string,
): Promise<{ format: Concrete; why: string } | undefined> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  const names = entries.filter((e) => e.isFile()).map((e) => e.name);
  const found = new Map<Concrete, string>();
  if (alembicProject(dir)) found.set('alembic', 'an alembic project (alembic.ini)');
  const folders = entries
    .filter((e) => e.isDirectory() && existsSync(path.join(dir, e.name, 'up.sql')))
    .map((e) => e.name)
    .sort();
  const sql = names.filter((n) => n.toLowerCase().endsWith('.sql')).sort();
  if (folders.length) found.set('sql', `${folders.length} folders with an up.sql, e.g. '${folders[0]}'`);
  else if (sql.length) found.set('sql', `${sql.length} .sql files, e.g. '${sql[0]}'`);
  const modules = names
    .filter((n) => ModuleExtensions.includes(path.extname(n)) && !/\.d\.[cm]?ts$/.test(n))
    .sort();
  let sequelize = 0;
  let umzug = 0;
  for (const name of modules) {
    const text = await readFile(path.join(dir, name), 'utf8').catch(() => '');
    if (/\bqueryInterface\b/.test(text)) sequelize++;
    else if (/\bcontext\b/.test(text) && /\b(up|down)\b/.test(text)) umzug++;
    else {
      // Parameters named otherwise (`up(qi, S)`, `up({ context: db })`): what the module exports decides.
      const kind = await moduleKind(path.join(dir, name));
      if (kind === 'sequelize') sequelize++;
      else if (kind === 'umzug') umzug++;
    }
  }
  if (sequelize)
    found.set(
      'sequelize',
      `${sequelize} of ${modules.length} modules take a queryInterface, e.g. '${modules[0]}'`,
    );
  if (umzug)
    found.set('umzug', `${umzug} of ${modules.length} modules take a { context }, e.g. '${modules[0]}'`);
  if (found.size > 1) {
    throw new CannotCheck(
      `'${path.relative(cwd, dir) || '.'}' could be several formats: ${[...found].map(([f, why]) => `${f} (${why})`).join('; ')}. Set '${Inputs.Format}' to the one your project runs, or keep one format per folder.`,
    );
  }
  const [only] = found;
  return only ? { format: only[0], why: only[1] } : undefined;
}

/** The set's migrations as its history: what the tool records, in which order, with which text. */
export function historyOf(set: LoadedSet): HistoryEntry[] {
  return set.migrations.map((m) => ({
    id: m.id,
    key: m.key,
    version: m.version,
    name: m.name,
    ...(m.order !== undefined ? { order: m.order } : {}),
    ...(m.parents ? { parents: m.parents } : {}),
    file: m.up.file,
    line: m.up.line,
    source: m.source,
    ...(m.repeatable ? { repeatable: true } : {}),
  }));
}

/**
 * What an `up` export's first parameter says: umzug passes one object that modules destructure
 * (`{ context }`) or read `.context` of; sequelize-cli passes `(queryInterface, Sequelize)`
 * positionally. Undefined when the module does not load or exports no `up` function.
 */
async function moduleKind(file: string): Promise<'sequelize' | 'umzug' | undefined> {
  let up: unknown;
  try {
    up = exportOf(await importModule(file), 'up');
  } catch {
    return undefined;
  }
  if (typeof up !== 'function') return undefined;
  const source = Function.prototype.toString.call(up);
  const first = firstParameter(source);
  if (first === '{') return 'umzug';
  if (first && new RegExp(`\\b${first.replace(/\$/g, '\\$')}\\s*\\.\\s*context\\b`).test(source))
    return 'umzug';
  return 'sequelize';
}

/** The first parameter of a function's source: its name, `{` for a destructured object, '' for none. */
export function firstParameter(source: string): string | undefined {
  const bare = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(source.trim());
  if (bare) return bare[1];
  const open = source.indexOf('(');
  if (open < 0) return undefined;
  const rest = source.slice(open + 1).trimStart();
  if (rest.startsWith(')')) return '';
  if (rest.startsWith('{')) return '{';
  return /^[A-Za-z_$][\w$]*/.exec(rest)?.[0];
}
