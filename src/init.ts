import type { Dirent } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CannotCheck, messageOf } from './core/errors.js';
import { ActionRepository } from './core/identity.js';
import { detectFormat, loadMigrations } from './migrations/index.js';
import type { Format } from './migrations/types.js';

/** A folder that holds migrations, as `init` found it. */
export interface Candidate {
  /** Relative to the repository root, `/`-separated. */
  dir: string;
  format: Exclude<Format, 'auto' | 'command'>;
  why: string;
}

/** Folders never searched: tools', dependencies', builds'. */
const Skipped = new Set([
  'node_modules',
  'dist',
  'build',
  'out',
  'target',
  'vendor',
  'venv',
  '__pycache__',
  'coverage',
]);
const MaxDepth = 4;

/**
 * Folders under `root` (at most 4 levels down, hidden folders and dependencies left out) that hold
 * migrations of a format the tool runs: an alembic project, SQL files a loader takes, sequelize or
 * umzug modules.
 */
export async function findMigrationFolders(root: string): Promise<Candidate[]> {
  const found: Candidate[] = [];
  const visit = async (dir: string, depth: number): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    const candidate = await candidateAt(root, dir).catch(() => undefined);
    if (candidate) {
      found.push(candidate);
      // An alembic project's folders, and a folder of migrations' own subfolders, are its.
      return;
    }
    if (depth >= MaxDepth) return;
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name)))
      if (e.isDirectory() && !e.name.startsWith('.') && !Skipped.has(e.name))
        await visit(path.join(dir, e.name), depth + 1);
  };
  await visit(root, 0);
  return found;
}

/**
 * `dir` as a candidate when its files load as migrations of a format the tool runs (alembic: its
 * alembic.ini is enough; listing would run Python); throws when they could be several formats.
 */
async function candidateAt(root: string, dir: string): Promise<Candidate | undefined> {
  const detected = await detectFormat(dir, root);
  if (!detected || detected.format === 'command') return undefined;
  if (detected.format !== 'alembic') {
    const loaded = await loadMigrations(dir, detected.format, root).catch(() => undefined);
    if (!loaded?.migrations.length) return undefined;
  }
  return {
    dir: path.relative(root, dir).split(path.sep).join('/') || '.',
    format: detected.format,
    why: detected.why,
  };
}

export interface InitIo {
  stdout(text: string): void;
  /** Asks the person at the terminal; undefined when nobody is there (CI, a pipe). */
  ask?: (question: string) => Promise<string>;
}

/**
 * `pg-migrate-verify init [folder]`: finds the migrations (or takes the folder), writes
 * pg-migrate-verify.yml and a pull-request workflow, never over an existing file, and says what it
 * wrote and what to do next. Returns the exit status.
 */
export async function runInit(root: string, given: string | undefined, io: InitIo): Promise<number> {
  const chosen = await chooseFolder(root, given, io);
  const config = configText(chosen);
  const workflow = workflowText();
  const written = [
    await writeNew(root, 'pg-migrate-verify.yml', config),
    await writeNew(root, path.join('.github', 'workflows', 'migrations.yml'), workflow),
  ];
  for (const line of written) io.stdout(`${line}\n`);
  io.stdout(
    [
      '',
      'Next:',
      '  1. npx pg-migrate-verify          check the history here, on a throwaway PostgreSQL',
      '  2. commit both files and open a pull request: the check comments on it',
      "  3. make the workflow's `verify` job a required status check of your default branch",
      '',
    ].join('\n'),
  );
  return 0;
}

async function chooseFolder(root: string, given: string | undefined, io: InitIo): Promise<Candidate> {
  if (given) {
    const candidate = await candidateAt(root, path.resolve(root, given));
    if (candidate) return candidate;
    throw new CannotCheck(
      `'${given}' holds no migrations the tool recognises (SQL files such as 0001_init.up.sql or V1__init.sql, sequelize or umzug modules, or an alembic project with alembic.ini). Give the folder your migrations are in, or write pg-migrate-verify.yml by hand with 'format: command' for another runner (see the README).`,
    );
  }
  const found = await findMigrationFolders(root);
  if (found.length === 1) return found[0] as Candidate;
  if (!found.length)
    throw new CannotCheck(
      `Found no migrations under '${root}' (4 levels down). Run \`pg-migrate-verify init <folder>\` with the folder your migrations are in.`,
    );
  const list = found.map((c, i) => `  ${i + 1}. ${c.dir} (${c.format}: ${c.why})`).join('\n');
  if (io.ask) {
    const answer = (
      await io.ask(`Found ${found.length} folders of migrations:\n${list}\nWhich one (1-${found.length})? `)
    ).trim();
    const picked = found[Number(answer) - 1];
    if (picked) return picked;
    throw new CannotCheck(
      `'${answer}' is not one of 1-${found.length}. Run init again, or give the folder: \`pg-migrate-verify init <folder>\`.`,
    );
  }
  throw new CannotCheck(
    `Found ${found.length} folders of migrations:\n${list}\nRun \`pg-migrate-verify init <folder>\` with the one to check (a monorepo: see 'sets' in the README).`,
  );
}

/** The config file for the chosen folder. */
export function configText(c: Candidate): string {
  return [
    '# yaml-language-server: $schema=https://unpkg.com/pg-migrate-verify/pg-migrate-verify.schema.json',
    '# pg-migrate-verify: every key is in the README; the Action inputs and CLI flags are the same.',
    `migrations-dir: ${yamlString(c.dir)}`,
    `format: ${c.format}          # detected: ${c.why.replaceAll('\n', ' ')}`,
    ...(c.format === 'alembic'
      ? ['alembic-command: alembic   # or "python3 -m alembic", "poetry run alembic"']
      : []),
    'postgres-version: 16       # the major production runs',
    '',
  ].join('\n');
}

/** A pull-request check (and the whole history on pushes to main), with the permissions the comment needs. */
export function workflowText(): string {
  return `name: migrations
on:
  pull_request:
  push:
    branches: [main]
permissions:
  contents: read
  pull-requests: write   # the sticky comment; without it the report is in the job summary only
jobs:
  verify:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: ${ActionRepository}@v1
        with:
          config: pg-migrate-verify.yml
`;
}

/** A YAML scalar for a path: plain where that reads back the same, quoted otherwise. */
function yamlString(text: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(text) && !/^[-.]/.test(text) ? text : JSON.stringify(text);
}

/** Writes `file` under `root` unless it exists; says which. */
async function writeNew(root: string, file: string, text: string): Promise<string> {
  const full = path.join(root, file);
  try {
    await mkdir(path.dirname(full), { recursive: true });
    // `wx`: fails when the file exists, with no window between a check and the write.
    await writeFile(full, text, { flag: 'wx' });
    return `wrote ${file}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return `left ${file} as it is: it exists`;
    throw new CannotCheck(`Could not write ${file}: ${messageOf(error)}.`, { cause: error });
  }
}
