import { type Dirent, readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { CannotCheck, messageOf, unreadableFolder } from '../core/errors.js';
import type { NewFinding } from '../core/findings.js';
import { Inputs } from '../core/inputs.js';
import { allowedRules } from '../core/locks.js';
import { compareVersions, type OrderRules, versionKey } from '../core/ordering.js';
import {
  directivesOf,
  hasTransactionControl,
  indexOfPosition,
  lineAt,
  loadSqlParser,
  splitStatements,
  transactionBlocker,
} from '../core/sql-text.js';
import type { Tracking } from '../core/target.js';
import type { LoadedSet, Migration, Step } from './types.js';
import { StepError } from './types.js';

type Layout = 'golang-migrate' | 'flyway' | 'dbmate' | 'directories';

const LayoutDescriptions: Record<Layout, string> = {
  'golang-migrate': 'golang-migrate layout (NNNN_name.up.sql / NNNN_name.down.sql)',
  flyway: 'Flyway layout (V1__name.sql, undo U1__name.sql)',
  dbmate: 'dbmate layout (NNNN_name.sql with -- migrate:up / -- migrate:down)',
  directories:
    'directory pairs as diesel writes them (2024-01-31-120000_name/up.sql and down.sql, or NNNN_name/)',
};

const Examples: Record<Layout, string> = {
  'golang-migrate': '0001_create_users.up.sql',
  flyway: 'V1__create_users.sql',
  dbmate: '20240101120000_create_users.sql',
  directories: '2024-01-31-120000_create_users/up.sql',
};

const golangName = /^(\d+)_(.*)\.(up|down)\.sql$/i;
const flywayName = /^([VU])(\d+(?:[._]\d+)*)__(.+)\.sql$/;
const flywayRepeatable = /^R__(.+)\.sql$/;
const numberedName = /^(\d+)(?:_(.*))?$/;
const dbmateUp = /^--\s*migrate:up\b(.*)$/im;
/** A folder name that starts like a version (digits, dashes in a diesel timestamp): almost a migration without up.sql. */
const versionLike = /^\d[\d-]*(?:_|$)/;
/**
 * A file named almost like a migration but not one the tools run: another extension after or instead
 * of `.sql` (`0003_x.up.sql.bak`, `0003_x.up.psql`), or a migration prefix with no `.sql` at all.
 */
const almostFile = /^(?:\d+_.+\.(?:up|down)(?:\..*)?|[VU]\d+(?:[._]\d+)*__.+|.+\.sql\..+)$/i;

/**
 * diesel's version of a migration folder: the name up to its first `_`, dashes removed
 * (`2018-01-18-172821_x` -> `20180118172821`). diesel sorts and records it as text.
 */
export function dieselVersion(name: string): string | undefined {
  const version = (name.split('_')[0] ?? '').replaceAll('-', '');
  return /^\d+$/.test(version) ? version : undefined;
}

const Rules: Record<Layout, OrderRules> = {
  'golang-migrate': {
    tool: 'golang-migrate',
    runsBy: 'version',
    namesMatter: false,
    outOfOrder:
      'golang-migrate records only the newest version it ran, so production never runs this one: it is skipped without an error, and what it makes exists only on fresh databases.',
    edited:
      'Production ran the old text, and golang-migrate never runs a recorded version again, so production and fresh databases end up with different schemas.',
    deleted:
      'Production recorded it as applied: golang-migrate cannot roll back past it with its file gone, and fresh databases no longer get what it made.',
  },
  flyway: {
    tool: 'Flyway',
    runsBy: 'version',
    namesMatter: true,
    outOfOrder:
      "Flyway's validation refuses to migrate production, since it is older than the newest migration applied there; with outOfOrder on, it runs after newer ones, an order no fresh database runs.",
    edited:
      "Flyway's checksum validation refuses to migrate production (checksum mismatch), and production would never run the new text anyway.",
    deleted: "Flyway's validation refuses to migrate production: a migration it applied is no longer found.",
  },
  dbmate: {
    tool: 'dbmate',
    runsBy: 'name',
    namesMatter: false,
    outOfOrder:
      'dbmate runs every version it has not recorded, so production runs it after migrations that sort after it, an order no fresh database runs; where they touch the same objects, production fails or ends up with another schema.',
    edited:
      'dbmate never runs a recorded version again, so production keeps what the old text made and fresh databases get the new one.',
    deleted:
      'dbmate keeps it in schema_migrations but can no longer roll it back, and fresh databases no longer get what it made.',
  },
  directories: {
    tool: 'diesel',
    runsBy: 'name',
    nameOrder: 'the text order of their versions (the folder name up to its first `_`, dashes removed)',
    namesMatter: false,
    outOfOrder:
      'diesel runs every version __diesel_schema_migrations does not list, so production runs it after migrations that sort after it, an order no fresh database runs.',
    edited:
      'diesel never runs a recorded version again, so production keeps what the old text made and fresh databases get the new one.',
    deleted:
      'diesel keeps its version in __diesel_schema_migrations, `diesel migration revert` can no longer undo it, and fresh databases no longer get what it made.',
  },
};

/** Where each layout's tool records what it ran, and what it does with a recorded migration the repository lacks. */
const Trackings: Record<Layout, Tracking> = {
  'golang-migrate': {
    tool: 'golang-migrate',
    table: 'public.schema_migrations',
    unknown:
      'golang-migrate has no file to go down from it (`migrate down` fails with "no migration found for version"), and `migrate up` treats every version below it as applied.',
  },
  flyway: {
    tool: 'flyway',
    table: 'public.flyway_schema_history',
    unknown:
      'Flyway\'s validate refuses to migrate ("Detected applied migration not resolved locally"), so this deploy would stop.',
  },
  dbmate: {
    tool: 'dbmate',
    table: 'public.schema_migrations',
    unknown: 'dbmate cannot roll it back (no file for it), and fresh databases never get what it made.',
  },
  directories: {
    tool: 'diesel',
    table: 'public.__diesel_schema_migrations',
    unknown:
      '`diesel migration revert` cannot undo it (no folder for it), and fresh databases never get what it made.',
  },
};

/** Repeatable Flyway migrations run after every versioned one. */
const RepeatableVersion = [2n ** 62n];

interface Candidate {
  layout: Layout;
  name: string;
}

/**
 * One migration file's text. Read synchronously: for a folder of thousands of small files that is
 * several times faster than the thread pool's round trips, and nothing else runs while loading.
 */
async function readText(file: string, shown: string): Promise<string> {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CannotCheck(
      `Cannot read migration file '${shown}': ${messageOf(error)}. Check its permissions.`,
      {
        cause: error,
      },
    );
  }
}

/** A migrations folder as it is read: its entries, how its paths are shown, the texts read so far. */
interface Folder {
  dir: string;
  shownDir: string;
  shown(...parts: string[]): string;
  entries: Dirent[];
  texts: Map<string, string>;
}

/** What a folder holds: migration files and folders, strays, and things that are almost migrations. */
interface Scan {
  candidates: Candidate[];
  /** `.sql` files named as no layout's migration. */
  strays: string[];
  /** Folders and files that look like migrations but are not read as any: never skipped in silence. */
  almost: NewFinding[];
}

/** Reads a folder of SQL migrations in any of the four layouts; refuses a mixed or empty folder. */
export async function loadSqlMigrations(dir: string, cwd: string): Promise<LoadedSet> {
  await loadSqlParser();
  const folder = await openFolder(dir, cwd);
  const scan = await scanFolder(folder);
  const layout = layoutOf(folder, scan);
  const notes: string[] = [];
  const findings: NewFinding[] = [...scan.almost];
  if (layout === 'directories') {
    // diesel reads folders only: a .sql file beside them is data or a script of the project's.
    if (scan.strays.length)
      notes.push(
        `diesel runs only the migration folders, so ${scan.strays.length === 1 ? 'this file beside them was' : `these ${scan.strays.length} files beside them were`} not run: ${scan.strays.map((n) => `'${folder.shown(n)}'`).join(', ')}.`,
      );
  } else {
    for (const name of scan.strays)
      findings.push({
        check: 'ordering',
        severity: 'error',
        file: folder.shown(name),
        message: `'${folder.shown(name)}' is not named as a migration of the ${LayoutDescriptions[layout]}, so the migration tool will never run it. Rename it like '${Examples[layout]}', or move it out of the migrations folder.`,
      });
  }
  const names = scan.candidates.map((c) => c.name);
  const migrations =
    layout === 'directories'
      ? await directoryMigrations(folder, names)
      : layout === 'dbmate'
        ? await dbmateMigrations(folder, names)
        : await versionedMigrations(folder, names, findings);
  migrations.sort(byRunOrder);
  return {
    format: 'sql',
    layout: LayoutDescriptions[layout],
    migrations,
    rules: Rules[layout],
    tracking: Trackings[layout],
    findings,
    ...(notes.length ? { notes } : {}),
  };
}

/** The order the tool runs migrations in: diesel by its version as text, the others by number. */
function byRunOrder(a: Migration, b: Migration): number {
  const byId = a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  if (a.order !== undefined && b.order !== undefined)
    return (a.order < b.order ? -1 : a.order > b.order ? 1 : 0) || byId;
  return compareVersions(a.version, b.version) || byId;
}

async function openFolder(dir: string, cwd: string): Promise<Folder> {
  const shownDir = path.relative(cwd, dir) || '.';
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return {
      dir,
      shownDir,
      shown: (...parts) => path.join(shownDir, ...parts),
      entries: entries.sort((a, b) => a.name.localeCompare(b.name)),
      texts: new Map(),
    };
  } catch (error) {
    throw unreadableFolder(
      Inputs.MigrationsDir,
      shownDir,
      error,
      'Set it to the folder that holds your migrations.',
    );
  }
}

async function scanFolder(folder: Folder): Promise<Scan> {
  const scan: Scan = { candidates: [], strays: [], almost: [] };
  for (const entry of folder.entries) {
    // Hidden entries are editor and VCS files; diesel skips them too.
    if (entry.name.startsWith('.')) continue;
    if (entry.isDirectory()) await scanDirectory(folder, entry.name, scan);
    else await scanFile(folder, entry.name, scan);
  }
  return scan;
}

/** A folder is a migration when it holds an up.sql and its name starts with a version, as diesel reads it. */
async function scanDirectory(folder: Folder, name: string, scan: Scan): Promise<void> {
  const inner = (await readdir(path.join(folder.dir, name)).catch(() => [] as string[])).filter(
    (n) => !n.startsWith('.'),
  );
  const hasUp = inner.includes('up.sql');
  const shown = `${folder.shown(name)}/`;
  if (hasUp && dieselVersion(name)) scan.candidates.push({ layout: 'directories', name });
  else if (hasUp)
    scan.almost.push({
      check: 'ordering',
      severity: 'error',
      file: folder.shown(name, 'up.sql'),
      message: `'${shown}' holds an up.sql, but its name does not start with a version: diesel takes '${name.split('_')[0]}' as its version and, sorting versions as text, runs it after every numbered migration, whatever its place was meant to be; this check cannot place it either. Rename it like '${datedName(name)}'.`,
    });
  else if (versionLike.test(name))
    scan.almost.push({
      check: 'ordering',
      severity: 'error',
      file: folder.shown(name),
      message: `'${shown}' is named like a migration folder, but has no up.sql (${inner.length ? `it holds ${inner.slice(0, 4).join(', ')}${inner.length > 4 ? ', ...' : ''}` : 'it is empty'}), so diesel skips it and it never runs. Give it an up.sql and a down.sql (lower case), or move it out of the migrations folder.`,
    });
}

async function scanFile(folder: Folder, name: string, scan: Scan): Promise<void> {
  if (!name.toLowerCase().endsWith('.sql')) {
    if (almostFile.test(name))
      scan.almost.push({
        check: 'ordering',
        severity: 'warning',
        file: folder.shown(name),
        message: `'${folder.shown(name)}' is named almost like a migration, but migration tools only run files that end in .sql, so it never runs. Rename it if it is a migration, or move it out of the migrations folder.`,
      });
    return;
  }
  if (golangName.test(name)) scan.candidates.push({ layout: 'golang-migrate', name });
  else if (flywayName.test(name) || flywayRepeatable.test(name))
    scan.candidates.push({ layout: 'flyway', name });
  else {
    const text = await readText(path.join(folder.dir, name), folder.shown(name));
    folder.texts.set(name, text);
    if (dbmateUp.test(text) && numberedName.test(name.slice(0, -4)))
      scan.candidates.push({ layout: 'dbmate', name });
    else scan.strays.push(name);
  }
}

/** The folder's one layout; a folder with none, or with several, is an error that says what it holds. */
function layoutOf(folder: Folder, scan: Scan): Layout {
  const layouts = [...new Set(scan.candidates.map((c) => c.layout))];
  if (layouts.length === 0) {
    const found = [
      scan.strays.length
        ? `${scan.strays.length} .sql file(s) named like none of them, e.g. '${scan.strays[0]}'`
        : '',
      scan.almost.length
        ? `${scan.almost.length} almost a migration: ${scan.almost
            .slice(0, 3)
            .map((f) => f.message)
            .join(' ')}`
        : '',
    ].filter(Boolean);
    throw new CannotCheck(
      `Input '${Inputs.MigrationsDir}' points to '${folder.shownDir}', which holds no migrations${found.length ? `. It holds ${found.join('; and ')}` : `: ${folderContents(folder.entries)}`}. Expected e.g. ${Object.values(Examples).join(', ')}; for migration modules or another runner, set '${Inputs.Format}'.`,
    );
  }
  if (layouts.length > 1) {
    const examples = layouts.map(
      (l) => `${LayoutDescriptions[l]}: '${scan.candidates.find((c) => c.layout === l)?.name}'`,
    );
    throw new CannotCheck(
      `'${folder.shownDir}' mixes migration layouts: ${examples.join('; ')}. Keep one layout per folder, or configure one migration set per folder.`,
    );
  }
  return layouts[0] as Layout;
}

function readFolderText(folder: Folder, name: string): Promise<string> {
  const known = folder.texts.get(name);
  return known !== undefined
    ? Promise.resolve(known)
    : readText(path.join(folder.dir, name), folder.shown(name));
}

/** golang-migrate and Flyway: up and down files paired by version; a down file alone is a finding. */
async function versionedMigrations(
  folder: Folder,
  names: string[],
  findings: NewFinding[],
): Promise<Migration[]> {
  const groups = new Map<string, { version: bigint[]; repeatable: boolean; up?: string; down?: string }>();
  for (const name of names) {
    const { id, version, direction } = versionedName(name);
    const group = groups.get(id) ?? { version, repeatable: version === RepeatableVersion };
    group[direction] = name;
    groups.set(id, group);
  }
  const loaded = await Promise.all(
    [...groups].map(async ([id, group]) => {
      if (!group.up) {
        const file = folder.shown(group.down ?? '');
        findings.push({
          check: 'ordering',
          severity: 'error',
          migration: id,
          file,
          message: `'${file}' is a down step with no up step, so it can never run. Restore the up file or delete this one.`,
        });
        return undefined;
      }
      const [upText, downText] = await Promise.all([
        readFolderText(folder, group.up),
        group.down ? readFolderText(folder, group.down) : undefined,
      ]);
      const down =
        group.down && downText !== undefined ? { file: folder.shown(group.down), text: downText } : undefined;
      return fileMigration(
        { id, version: group.version, name: group.up, repeatable: group.repeatable },
        { file: folder.shown(group.up), text: upText },
        down,
        'no down file',
      );
    }),
  );
  return loaded.filter((m): m is Migration => !!m);
}

/** A golang-migrate or Flyway file name: the migration it belongs to, its version, its direction. */
function versionedName(name: string): { id: string; version: bigint[]; direction: 'up' | 'down' } {
  const golang = golangName.exec(name);
  if (golang)
    return {
      id: `${golang[1]}_${golang[2]}`,
      version: [BigInt(golang[1] ?? '0')],
      direction: (golang[3] ?? '').toLowerCase() as 'up' | 'down',
    };
  const flyway = flywayName.exec(name);
  if (flyway)
    return {
      id: `V${flyway[2]}__${flyway[3]}`,
      version: (flyway[2] ?? '').split(/[._]/).map((s) => BigInt(s)),
      direction: flyway[1] === 'V' ? 'up' : 'down',
    };
  return { id: name.slice(0, -4), version: RepeatableVersion, direction: 'up' };
}

/** diesel's folders: up.sql, down.sql when there is one, and metadata.toml's transaction setting. */
async function directoryMigrations(folder: Folder, names: string[]): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const name of names) {
    const upText = await readText(path.join(folder.dir, name, 'up.sql'), folder.shown(name, 'up.sql'));
    const downText = await readFile(path.join(folder.dir, name, 'down.sql'), 'utf8').catch(() => undefined);
    const order = dieselVersion(name) ?? '0';
    const metadata = await readFile(path.join(folder.dir, name, 'metadata.toml'), 'utf8').catch(
      () => undefined,
    );
    migrations.push(
      fileMigration(
        {
          id: name,
          version: [BigInt(order)],
          name,
          key: order,
          order,
          noTransaction:
            metadata !== undefined && !runsInTransaction(metadata) ? MetadataNoTransaction : undefined,
        },
        { file: folder.shown(name, 'up.sql'), text: upText },
        downText !== undefined ? { file: folder.shown(name, 'down.sql'), text: downText } : undefined,
        'no down.sql',
      ),
    );
  }
  return migrations;
}

async function dbmateMigrations(folder: Folder, names: string[]): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const name of names) {
    const id = name.slice(0, -4);
    const version = [BigInt(numberedName.exec(id)?.[1] ?? '0')];
    migrations.push(
      dbmateMigration(id, version, name, folder.shown(name), await readFolderText(folder, name)),
    );
  }
  return migrations;
}

const MetadataNoTransaction = 'metadata.toml: run_in_transaction = false';

/**
 * diesel's `metadata.toml`: once the file exists, `run_in_transaction` defaults to false (serde's
 * default for a bool); without the file, diesel runs the migration in a transaction.
 */
function runsInTransaction(toml: string): boolean {
  return /^\s*run_in_transaction\s*=\s*true\s*(?:#.*)?$/m.test(toml);
}

/** `create_comments` as diesel would name it today, for the fix in a message. */
function datedName(name: string): string {
  return `2024-01-31-120000_${name}`;
}

/** What a folder holds when none of it is a migration, for the error that says so. */
function folderContents(entries: Dirent[]): string {
  const visible = entries.filter((e) => !e.name.startsWith('.'));
  if (!visible.length) return 'it is empty';
  const count = new Map<string, number>();
  for (const e of visible) {
    const kind = e.isDirectory() ? 'folders' : `${path.extname(e.name) || 'extension-less'} files`;
    count.set(kind, (count.get(kind) ?? 0) + 1);
  }
  const kinds = [...count].map(([kind, n]) => `${n} ${kind}`).join(', ');
  return `it holds ${kinds}, e.g. '${visible[0]?.name}'`;
}

function fileMigration(
  {
    id,
    version,
    name,
    repeatable,
    key,
    order,
    noTransaction,
  }: {
    id: string;
    version: bigint[];
    name: string;
    repeatable?: boolean;
    /** What the tool records; the version without trailing zero segments by default. */
    key?: string;
    order?: string;
    /** Why both steps run outside a transaction, when the migration's own settings say so. */
    noTransaction?: string;
  },
  up: { file: string; text: string },
  down: { file: string; text: string } | undefined,
  missing: string,
): Migration {
  const marks = new Set([...directivesOf(up.text), ...(down ? directivesOf(down.text) : [])]);
  const irreversible = marks.has('irreversible');
  const marked = (text: string) =>
    noTransaction ?? (directivesOf(text).has('no-transaction') ? 'marked no-transaction' : undefined);
  return {
    id,
    version,
    key: key ?? (repeatable ? id : versionKey(version)),
    name,
    ...(order !== undefined ? { order } : {}),
    source: up.text,
    ...(repeatable ? { repeatable } : {}),
    up: sqlStep(up.file, 1, up.text, marked(up.text)),
    ...(down && !irreversible
      ? { down: sqlStep(down.file, 1, down.text, marked(down.text)) }
      : { noDown: irreversible ? 'marked irreversible' : missing }),
  };
}

function dbmateMigration(id: string, version: bigint[], name: string, file: string, text: string): Migration {
  const lines = text.split('\n');
  const marker = (kind: 'up' | 'down') =>
    lines.findIndex((l) => new RegExp(`^--\\s*migrate:${kind}\\b`, 'i').test(l));
  const upAt = marker('up');
  const downAt = marker('down');
  const section = (from: number, to: number) =>
    lines.slice(from + 1, to < 0 || to < from ? lines.length : to).join('\n');
  const noTx = (at: number) =>
    /transaction:\s*false/i.test(lines[at] ?? '') ? 'dbmate transaction:false' : undefined;
  const upText = section(upAt, downAt);
  const irreversible = directivesOf(text).has('irreversible');
  return {
    id,
    version,
    key: versionKey(version),
    name,
    source: upText,
    up: sqlStep(
      file,
      upAt + 2,
      upText,
      noTx(upAt) ?? (directivesOf(upText).has('no-transaction') ? 'marked no-transaction' : undefined),
    ),
    ...(downAt >= 0 && !irreversible
      ? { down: sqlStep(file, downAt + 2, section(downAt, upAt > downAt ? upAt : -1), noTx(downAt)) }
      : { noDown: irreversible ? 'marked irreversible' : 'no -- migrate:down section' }),
  };
}

/**
 * A step that runs SQL text: in one transaction, or statement by statement when the text cannot
 * run in one (CREATE INDEX CONCURRENTLY, ...) or is marked `-- pg-migrate-verify: no-transaction`.
 */
function sqlStep(file: string, line: number, text: string, marked: string | undefined): Step {
  const blocker = marked ?? transactionBlocker(text);
  const locate = (index: number) => line - 1 + lineAt(text, index);
  const allow = allowedRules(text);
  return {
    file,
    line,
    ...(blocker ? { noTransaction: blocker } : {}),
    ...(allow.length ? { allow } : {}),
    // Asked only for migrations that are only applied: parsing every file at load costs time and
    // memory (the parser's WASM heap does not shrink).
    ...(blocker
      ? {}
      : { batched: () => (hasTransactionControl(text) ? undefined : `${TxPrefix}${text}\n;`) }),
    async run(context) {
      const { client } = context;
      if (blocker) {
        await client.query(FreshSession);
        const statements = splitStatements(text);
        if (!statements) {
          await query(client, text, file, locate, 0);
          return;
        }
        for (const statement of statements) {
          await query(client, statement.sql, file, locate, statement.start, true);
        }
        return;
      }
      // BEGIN, our bookkeeping and COMMIT travel with the text: one round trip per step instead of
      // four, and what the runner wants to follow the step comes after the COMMIT. Positions are
      // shifted back below; the newline ends a trailing comment in the text.
      const follow = context.follow ?? [];
      try {
        const results = await query(
          client,
          text,
          file,
          locate,
          0,
          false,
          TxPrefix,
          `\n;${context.bookkeeping ?? ''};COMMIT${follow.map((f) => `;${f}`).join('')}`,
        );
        context.recorded = true;
        if (follow.length) context.followed = results.slice(-follow.length);
      } catch (error) {
        // The step committed and what followed it failed: the step went through (and what followed
        // is run again on its own). A step that failed leaves its transaction aborted, so the
        // question itself fails there.
        if (follow.length && (await context.committed?.().catch(() => false))) {
          context.recorded = true;
          return;
        }
        await client.query('ROLLBACK').catch(() => {});
        if (error instanceof StepError && error.line === undefined) {
          const at = await locateFailingStatement(client, text);
          if (at !== undefined)
            throw new StepError(error.message, file, locate(at), error.detail, { cause: error.cause });
        }
        throw error;
      }
    },
  };
}

/**
 * Each step starts with the lock_timeout a deploy's session starts with: a \`SET lock_timeout\` an
 * earlier migration left on our shared session must not hide that this one sets none.
 */
const FreshSession = 'RESET lock_timeout';
const TxPrefix = `BEGIN;${FreshSession};\n`;

/** Sends `prefix + sql + suffix` in one query string; returns each statement's result. */
async function query(
  client: pg.Client,
  sql: string,
  file: string,
  locate: (index: number) => number,
  offset: number,
  single = false,
  prefix = '',
  suffix = '',
): Promise<pg.QueryResult[]> {
  try {
    const result = (await client.query(prefix + sql + suffix)) as unknown as
      | pg.QueryResult
      | pg.QueryResult[];
    return Array.isArray(result) ? result : [result];
  } catch (error) {
    const located = stepErrorOf(error, file, sql, locate, offset, prefix.length);
    // One statement sent alone: without a position, its first line is still the right place.
    if (single && located.line === undefined) {
      throw new StepError(located.message, file, locate(offset), located.detail, { cause: error });
    }
    throw located;
  }
}

/** Wraps a driver error with file and line; Postgres's `position` is counted in the text we sent. */
export function stepErrorOf(
  error: unknown,
  file: string,
  sql: string,
  locate: (index: number) => number,
  offset: number,
  prefixLength = 0,
): StepError {
  const e = error as pg.DatabaseError;
  const raw = e.position ? Number(e.position) - prefixLength : undefined;
  const position = raw !== undefined && raw > 0 ? raw : undefined;
  const line = position ? locate(offset + indexOfPosition(sql, position)) : undefined;
  return new StepError(messageOf(error), file, line, describeDatabaseError(e), { cause: error });
}

/** The parts of a Postgres error a reader needs: message, detail, hint, context, SQLSTATE. */
export function describeDatabaseError(e: Partial<pg.DatabaseError>): string | undefined {
  if (!e.code) return undefined;
  const parts = [`ERROR:  ${e.message}`];
  if (e.detail) parts.push(`DETAIL:  ${e.detail}`);
  if (e.hint) parts.push(`HINT:  ${e.hint}`);
  if (e.where) parts.push(`CONTEXT:  ${e.where}`);
  parts.push(`SQLSTATE: ${e.code}`);
  return parts.join('\n');
}

/**
 * Postgres's own words from an error thrown by a driver or an ORM over it (Sequelize wraps the
 * driver's error in `parent` and adds the `sql` it sent); undefined for errors from elsewhere.
 */
export function driverErrorDetail(error: unknown): string | undefined {
  const e = error as { parent?: Partial<pg.DatabaseError>; sql?: string } & Partial<pg.DatabaseError>;
  const parts = [describeDatabaseError(e.parent ?? e), e.sql && `SQL: ${e.sql}`].filter(Boolean);
  return parts.length ? parts.join('\n') : undefined;
}

/**
 * Errors raised while executing (not parsing) carry no position. Re-run the statements one by one
 * in a transaction that is rolled back, to find which one fails. Only after a failure, so free otherwise.
 */
async function locateFailingStatement(client: pg.Client, text: string): Promise<number | undefined> {
  const statements = splitStatements(text);
  if (!statements?.length || hasTransactionControl(text)) return undefined;
  await client.query('BEGIN');
  try {
    for (const statement of statements) {
      try {
        await client.query(statement.sql);
      } catch {
        return statement.start;
      }
    }
    return undefined;
  } finally {
    await client.query('ROLLBACK').catch(() => {});
  }
}
