import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { CannotCheck } from '../core/errors.js';
import type { NewFinding } from '../core/findings.js';
import { Inputs } from '../core/inputs.js';
import { allowedRules } from '../core/locks.js';
import type { OrderRules } from '../core/ordering.js';
import { commandFailure, fillCommand, outputTail, pgEnv, runCommand } from '../shell.js';
import { alembicServer, interpreterOf } from './alembic-server.js';
import { StepServerPool } from './step-server.js';
import type { LoadedSet, Migration, Step, StepContext } from './types.js';
import { StepError } from './types.js';

export interface AlembicOptions {
  /** How to run alembic: `alembic` (default), `python3 -m alembic`, `poetry run alembic`, ... */
  command: string;
  /** Also give the database URL in this variable (DATABASE_URL and PG* are always set). */
  urlVariable?: string;
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
}

export const AlembicRules: OrderRules = {
  tool: 'alembic',
  runsBy: 'graph',
  namesMatter: false,
  outOfOrder: '',
  edited:
    'alembic never runs a revision its version table has passed again, so production keeps what the old code did and fresh databases get the new code.',
  deleted:
    'Production\'s alembic_version may point at it or past it: alembic then refuses to run ("Can\'t locate revision"), and fresh databases no longer get what it made.',
};

/** One revision of the graph, as `alembic history --verbose` describes it. */
export interface Revision {
  id: string;
  parents: string[];
  /** Absolute path of the revision file. */
  path: string;
}

/** Parses `alembic history --verbose`: blocks of `Rev:`, `Parent:` / `Merges:`, `Path:`. */
export function parseHistory(text: string): Revision[] {
  const revisions: Revision[] = [];
  let current: Partial<Revision> | undefined;
  const flush = () => {
    if (current?.id)
      revisions.push({ id: current.id, parents: current.parents ?? [], path: current.path ?? '' });
    current = undefined;
  };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const rev = /^Rev: (\S+)/.exec(line);
    const parents = /^(?:Parent|Merges): (.+)$/.exec(line);
    const file = /^Path: (.+)$/.exec(line);
    if (rev) {
      flush();
      current = { id: rev[1] };
    } else if (current && parents) {
      current.parents = (parents[1] ?? '')
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p && p !== '<base>');
    } else if (current && file) {
      current.path = file[1]?.trim();
    }
  }
  flush();
  return revisions;
}

/** Parents before children; among revisions ready at once, the order alembic lists them from the base. */
export function topologicalOrder(revisions: readonly Revision[]): Revision[] {
  const byId = new Map(revisions.map((r) => [r.id, r]));
  const listed = [...revisions].reverse();
  const done = new Set<string>();
  const out: Revision[] = [];
  while (out.length < listed.length) {
    const next = listed.find((r) => !done.has(r.id) && r.parents.every((p) => done.has(p) || !byId.has(p)));
    if (!next)
      throw new CannotCheck('The alembic revision graph has a cycle; `alembic history` cannot order it.');
    done.add(next.id);
    out.push(next);
  }
  return out;
}

/** Revisions nothing revises: more than one means `alembic upgrade head` refuses to run. */
export function headsOf(revisions: readonly Revision[]): string[] {
  const parents = new Set(revisions.flatMap((r) => r.parents));
  return revisions.filter((r) => !parents.has(r.id)).map((r) => r.id);
}

/** The folder holding alembic.ini: the given one, or its parent when given the script folder. */
export function alembicProject(dir: string): string | undefined {
  if (existsSync(path.join(dir, 'alembic.ini'))) return dir;
  if (existsSync(path.join(dir, 'env.py')) && existsSync(path.join(dir, '..', 'alembic.ini')))
    return path.dirname(dir);
  return undefined;
}

/** How to run alembic in one project, and what its revision graph says. */
interface AlembicProject {
  cwd: string;
  options: AlembicOptions;
  revisions: Revision[];
  byId: Map<string, Revision>;
  /** Runs `alembic <name> <target>` on the step's database; a failure is a StepError at `file`. */
  run(argv: [string, string], context: StepContext, file: string): Promise<void>;
  /** Ends the interpreter the steps run in. */
  close(): Promise<void>;
}

/**
 * An alembic project: revisions from the project's own `alembic history`, walked parents first.
 * Each revision goes up with `alembic upgrade <rev>`; down with exactly that revision undone, also
 * on a branchy graph: the version table is narrowed to the revision, `alembic downgrade -1` undoes
 * it alone, and the other branches' heads are put back.
 */
export async function loadAlembicMigrations(
  dir: string,
  cwd: string,
  options: AlembicOptions,
): Promise<LoadedSet> {
  const project = await openProject(dir, cwd, options);
  const { revisions } = project;
  const migrations: Migration[] = [];
  const together = upTogether(project);
  for (const [index, revision] of revisions.entries()) {
    const file = path.relative(cwd, revision.path) || revision.path;
    const source = await readFile(revision.path, 'utf8').catch(() => revision.id);
    migrations.push({
      id: revision.id,
      version: [BigInt(index)],
      key: revision.id,
      parents: revision.parents,
      name: path.basename(revision.path),
      source,
      up: {
        file,
        line: 1,
        ...(allowedRules(source).length ? { allow: allowedRules(source) } : {}),
        async run(context) {
          await project.run(['upgrade', revision.id], context, file);
        },
        together,
      },
      down: downStep(project, revision, file, source),
    });
  }
  const heads = headsOf(revisions);
  return {
    format: 'alembic',
    layout: `alembic project '${path.relative(cwd, alembicProject(dir) ?? dir) || '.'}' (${revisions.length} revisions, ${heads.length === 1 ? 'one head' : `${heads.length} heads`}${revisions.some((r) => r.parents.length > 1) ? ', with merges' : ''})`,
    migrations,
    rules: AlembicRules,
    historyTables: ['public.alembic_version'],
    tracking: {
      tool: 'alembic',
      table: 'public.alembic_version',
      unknown:
        'alembic refuses to run at all ("Can\'t locate revision identified by ..."), so this deploy would stop before its first revision.',
    },
    findings: headsFindings(project, heads),
    close: () => project.close(),
  };
}

/** The project's revisions from `alembic history --verbose`, and how to run alembic there. */
async function openProject(dir: string, cwd: string, options: AlembicOptions): Promise<AlembicProject> {
  const shownDir = path.relative(cwd, dir) || '.';
  const root = alembicProject(dir);
  if (!root)
    throw new CannotCheck(
      `'${shownDir}' is not an alembic project: it has no alembic.ini (nor does its parent next to an env.py). Set '${Inputs.MigrationsDir}' to the folder that holds alembic.ini.`,
    );
  const alembic = (args: string, env: NodeJS.ProcessEnv, signal?: AbortSignal) =>
    runCommand(`${options.command} ${args}`, { cwd: root, env, timeoutMs: options.timeoutMs, signal });
  const listed = await alembic('history --verbose', options.env);
  if (listed.code !== 0)
    throw new CannotCheck(
      `\`${options.command} history --verbose\` in '${path.relative(cwd, root) || '.'}' ${listed.timedOut ? 'did not finish' : `exited with ${listed.code ?? 'a signal'}`}: ${outputTail(listed, 8) || 'no output'}. Check that alembic is installed (or set '${Inputs.AlembicCommand}', e.g. "python3 -m alembic") and that alembic.ini is valid.`,
    );
  const revisions = topologicalOrder(parseHistory(listed.stdout));
  if (!revisions.length)
    throw new CannotCheck(
      `\`${options.command} history\` in '${shownDir}' lists no revisions. Add one with \`alembic revision\`.`,
    );
  const stepEnv = (url: string): Record<string, string> => ({
    ...pgEnv(url),
    ...(options.urlVariable ? { [options.urlVariable]: url } : {}),
  });
  // Every step in one interpreter of the project's environment, when the command names one.
  const interpreter = interpreterOf(options.command, options.env, root);
  const servers = interpreter
    ? new StepServerPool(() => alembicServer(interpreter, root, options.env))
    : undefined;
  return {
    cwd,
    options,
    revisions,
    byId: new Map(revisions.map((r) => [r.id, r])),
    async run(argv, context, file) {
      const args = `${argv[0]} ${fillCommand('{target}', { target: argv[1] })}`;
      const env = stepEnv(context.databaseUrl);
      const result =
        (await servers?.for(context).run(argv, env, options.timeoutMs, context.signal)) ??
        (await alembic(args, { ...options.env, ...env }, context.signal));
      if (result.code === 0) return;
      const { message, detail, line } = commandFailure(`alembic ${args}`, result, { file, cwd });
      throw new StepError(message, file, line, detail);
    },
    close: async () => servers?.close(),
  };
}

/** Every revision `id` builds on, transitively. */
function ancestorsOf(project: AlembicProject, id: string, seen = new Set<string>()): Set<string> {
  for (const p of project.byId.get(id)?.parents ?? []) {
    if (!seen.has(p)) {
      seen.add(p);
      ancestorsOf(project, p, seen);
    }
  }
  return seen;
}

/** The smallest set of heads that means all of `ids` are applied. */
function minimalHeads(project: AlembicProject, ids: string[]): string[] {
  return ids.filter((id) => !ids.some((other) => other !== id && ancestorsOf(project, other).has(id)));
}

/**
 * Many revisions in one `alembic upgrade` (one per head they lead to, on a branchy graph): what a
 * replay of revisions that are only applied costs. After a failure, the revisions the version
 * table shows as applied count (alembic may have rolled the whole command back).
 */
function upTogether(project: AlembicProject): NonNullable<Step['together']> {
  return {
    with: project,
    async run(context, migrations) {
      const ids = migrations.map((m) => m.id);
      try {
        for (const head of minimalHeads(project, ids))
          await project.run(['upgrade', head], context, project.byId.get(head)?.path ?? head);
        return ids.length;
      } catch (error) {
        if (!(error instanceof StepError)) throw error;
        const applied = new Set<string>();
        for (const head of await versions(context.client).catch(() => [] as string[])) {
          applied.add(head);
          for (const a of ancestorsOf(project, head)) applied.add(a);
        }
        const done = ids.findIndex((id) => !applied.has(id));
        return done < 0 ? ids.length : done;
      }
    },
  };
}

/** Undoes exactly one revision, leaving sibling branches applied. */
function downStep(project: AlembicProject, revision: Revision, file: string, source: string): Step {
  // alembic will not step down from a merge alone ("Ambiguous walk"); a merge whose downgrade does
  // nothing (what `alembic merge` writes) is undone by moving the version table, as alembic would.
  const emptyMerge = revision.parents.length > 1 && doesNothing(source, 'downgrade');
  const allow = allowedRules(source);
  return {
    file,
    line: 1,
    ...(allow.length ? { allow } : {}),
    async run(context) {
      const heads = await versions(context.client);
      const after = minimalHeads(project, [...heads.filter((h) => h !== revision.id), ...revision.parents]);
      if (emptyMerge) {
        await setVersions(context.client, after);
        return;
      }
      await setVersions(context.client, [revision.id]);
      try {
        await project.run(['downgrade', '-1'], context, file);
      } catch (error) {
        await setVersions(context.client, heads).catch(() => {});
        throw error;
      }
      await setVersions(context.client, after);
    },
  };
}

/** More than one head: `alembic upgrade head` refuses to run on production. */
function headsFindings(project: AlembicProject, heads: string[]): NewFinding[] {
  if (heads.length < 2) return [];
  const files = heads.map((h) => path.relative(project.cwd, project.byId.get(h)?.path ?? h));
  return [
    {
      check: 'ordering',
      severity: 'error',
      migration: heads[heads.length - 1],
      file: files[files.length - 1],
      message: `The alembic graph has ${heads.length} heads (${heads.map((h) => `\`${h}\``).join(', ')}), so \`alembic upgrade head\` on production stops with "Multiple head revisions are present". Two branches added revisions on the same parent: join them with \`alembic merge heads\`.`,
      detail: files.join('\n'),
    },
  ];
}

/** True when the Python function `name` in `source` has only `pass`, a docstring or comments. */
export function doesNothing(source: string, name: string): boolean {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^def ${name}\\s*\\(`).test(l));
  if (start < 0) return false;
  const body: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() && !/^\s/.test(line)) break;
    body.push(line.trim());
  }
  const code = body
    .join('\n')
    .replace(/("""|''')[\s\S]*?\1/g, '')
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean);
  return code.every((l) => l === 'pass' || l === '...');
}

async function versions(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ v: string }>('SELECT version_num AS v FROM alembic_version');
  return rows.map((r) => r.v);
}

async function setVersions(client: pg.Client, ids: string[]): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('DELETE FROM alembic_version');
    await client.query('INSERT INTO alembic_version (version_num) SELECT unnest($1::text[])', [ids]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
