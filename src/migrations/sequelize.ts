import * as nodeModule from 'node:module';
import { createRequire, Module } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { messageOf } from '../core/errors.js';
import { type OrderRules, timestampVersions } from '../core/ordering.js';
import { exportOf, importModule } from '../modules.js';
import { moduleMigration, readModuleFolder } from './module-folder.js';
import { driverErrorDetail } from './sql.js';
import type { LoadedSet, StepContext } from './types.js';
import { StepError } from './types.js';

/** The files sequelize-cli runs: every .js/.cjs/.mjs/.ts file in the folder, by name (no `.d.ts`). */
const MigrationFile = /^(?!.*\.d\.[cm]?ts$).*\.(?:c?js|mjs|[cm]?ts)$/;
const Timestamped = /^(\d+)[-_]/;

export const SequelizeRules: OrderRules = {
  tool: 'sequelize-cli',
  runsBy: 'name',
  namesMatter: false,
  outOfOrder:
    'sequelize-cli runs every migration SequelizeMeta does not list, so production runs it after migrations that sort after it, an order no fresh database runs.',
  edited:
    'sequelize-cli never runs a migration SequelizeMeta lists again, so production keeps what the old code did and fresh databases get the new code.',
  deleted:
    'SequelizeMeta still lists it on production, `db:migrate:undo` cannot undo it any more, and fresh databases no longer get what it made.',
};

const MetaTable = '"SequelizeMeta"';

interface SequelizeModule {
  Sequelize: new (
    url: string,
    options: Record<string, unknown>,
  ) => {
    getQueryInterface(): unknown;
    close(): Promise<void>;
  };
}

/** The project's own sequelize when it has one (its migrations expect that version), else ours. */
async function sequelizeFor(dir: string): Promise<{ module: SequelizeModule; own: boolean }> {
  try {
    const resolved = createRequire(path.join(dir, 'noop.js')).resolve('sequelize');
    const mod = await importModule(resolved);
    const Sequelize = exportOf(mod, 'Sequelize') ?? exportOf(mod, 'default');
    if (typeof Sequelize === 'function') return { module: { Sequelize } as SequelizeModule, own: false };
  } catch {
    // Not installed in the project: use the copy that comes with this tool.
  }
  const mod = (await import('sequelize')) as unknown as SequelizeModule & { default?: SequelizeModule };
  const Sequelize = mod.Sequelize ?? mod.default?.Sequelize;
  provideSequelize(mod.default ?? Sequelize);
  return { module: { Sequelize } as SequelizeModule, own: true };
}

const Provided = Symbol.for('pg-migrate-verify.sequelize');

/**
 * Lets migrations that `require('sequelize')` (or import it) find the copy that comes with this
 * tool when their project has none installed: only a lookup that would fail otherwise is answered.
 * CommonJS through the resolver of `require`, ES modules through a resolve hook (Node 20.6+).
 */
function provideSequelize(exports: unknown): void {
  const global = globalThis as Record<symbol, unknown>;
  if (global[Provided]) return;
  global[Provided] = exports;
  const loader = Module as unknown as {
    _resolveFilename: (request: string, ...rest: unknown[]) => string;
    _cache: Record<string, unknown>;
  };
  // A key in require's cache, never a file: require returns the cached exports without reading it.
  const id = path.join(os.tmpdir(), 'pg-migrate-verify', 'bundled-sequelize.cjs');
  const entry = new Module(id);
  Object.assign(entry, { filename: id, loaded: true, exports });
  loader._cache[id] = entry;
  const resolve = loader._resolveFilename;
  loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
    try {
      return resolve.call(this, request, ...rest);
    } catch (error) {
      if (request === 'sequelize') return id;
      throw error;
    }
  };
  const { register } = nodeModule as { register?: (specifier: string) => void };
  if (typeof register !== 'function') return;
  const names = Object.keys(exports as object).filter(isBindingName);
  const shim = [
    `const s = globalThis[Symbol.for('pg-migrate-verify.sequelize')];`,
    'export default s;',
    names.length ? `export const { ${names.join(', ')} } = s;` : '',
  ].join('\n');
  const hooks = [
    'export async function resolve(specifier, context, next) {',
    '  try { return await next(specifier, context); }',
    `  catch (error) { if (specifier === 'sequelize') return { url: ${JSON.stringify(`data:text/javascript,${encodeURIComponent(shim)}`)}, shortCircuit: true }; throw error; }`,
    '}',
  ].join('\n');
  try {
    register(`data:text/javascript,${encodeURIComponent(hooks)}`);
  } catch {
    // Hooks unavailable (an old Node, or a host that forbids them): CommonJS still finds the copy.
  }
}

/** True when `name` can be an exported binding (`export const { name } = ...`). */
function isBindingName(name: string): boolean {
  if (!/^[A-Za-z_$][\w$]*$/.test(name) || name === 'default') return false;
  try {
    new Function(`let ${name};`);
    return true;
  } catch {
    return false;
  }
}

/** Reads a sequelize-cli migrations folder: one module per migration, run in file-name order. */
export async function loadSequelizeMigrations(dir: string, cwd: string): Promise<LoadedSet> {
  // Before the modules load: one that requires 'sequelize' at load time must find a copy.
  const library = await sequelizeFor(dir);
  const modules = await readModuleFolder(dir, cwd, (name) => MigrationFile.test(name), {
    name: 'sequelize-cli',
    empty: 'sequelize-cli migrations (.js, .cjs, .mjs or .ts files such as 20240101120000-create-users.js)',
  });
  const versions = timestampVersions(modules.map((mod) => Timestamped.exec(mod.name)?.[1]));
  const migrations = modules.map((mod, index) =>
    moduleMigration(
      mod,
      versions[index] ?? 0n,
      'sequelize-cli runs each migration outside a transaction of its own',
      async (fn, context, direction) => {
        const { instance, Sequelize } = await connect(context, library);
        try {
          await fn(instance.getQueryInterface(), Sequelize);
        } catch (error) {
          throw new StepError(messageOf(error), mod.shown, undefined, driverErrorDetail(error), {
            cause: error,
          });
        }
        await record(context, mod.name, direction);
      },
    ),
  );
  const { own } = library;
  return {
    format: 'sequelize',
    layout: `sequelize-cli migrations (${modules.length} modules, sequelize ${own ? 'bundled with this tool' : 'from the project'})`,
    migrations,
    rules: SequelizeRules,
    historyTables: ['public.SequelizeMeta'],
    tracking: {
      tool: 'sequelize',
      table: 'public.SequelizeMeta',
      unknown:
        'sequelize-cli cannot undo it (`db:migrate:undo` stops with "Unable to find migration"), and fresh databases never get what it made.',
    },
    findings: [],
  };
}

const CreateMeta = `CREATE TABLE IF NOT EXISTS ${MetaTable} ("name" VARCHAR(255) NOT NULL UNIQUE, PRIMARY KEY ("name"))`;

/** One Sequelize instance per database, as sequelize-cli has one per run. */
async function connect(context: StepContext, library: { module: SequelizeModule; own: boolean }) {
  const key = 'sequelize';
  let instance = context.shared.get(key) as InstanceType<SequelizeModule['Sequelize']> | undefined;
  if (!instance) {
    instance = new library.module.Sequelize(context.databaseUrl, {
      dialect: 'postgres',
      logging: false,
      // Our copy uses our driver, rather than looking one up by name from inside a bundle.
      ...(library.own ? { dialectModule: pg } : {}),
      pool: { max: 5, min: 0, idle: 1000 },
    });
    context.shared.set(key, instance);
    const created = instance;
    context.onClose(() => created.close());
    // Queries still in its pool after a step returned were not awaited by the migration.
    context.onBusy(() => poolBusy(created));
    // The first connection also asks the server's version; after that, a query a step starts
    // reaches the pool at once, so the probe above sees it.
    await (created as unknown as { authenticate?: () => Promise<void> }).authenticate?.();
    await context.client.query(CreateMeta);
    context.shared.set(MetaKey, new Set<string>());
  }
  return { instance, Sequelize: library.module.Sequelize };
}

/** Connections of the Sequelize pool in use or waited for (sequelize-pool; read/write pools with replication). */
function poolBusy(instance: unknown): boolean {
  type Pool = { using?: number; waiting?: number; read?: Pool; write?: Pool };
  const pool = (instance as { connectionManager?: { pool?: Pool } }).connectionManager?.pool;
  const count = (p?: Pool): number =>
    p ? (p.using ?? 0) + (p.waiting ?? 0) + count(p.read) + count(p.write) : 0;
  return count(pool) > 0;
}

/** The names SequelizeMeta holds on this database, as we wrote them. */
const MetaKey = 'sequelize:meta';

/**
 * What sequelize-cli records, so a database migrated by the tool reads like one migrated by
 * sequelize-cli. A step that dropped SequelizeMeta (`dropAllTables()` drops it with the rest) finds
 * what sequelize-cli finds: its storage creates the table again, empty, and records the step there.
 */
async function record(context: StepContext, name: string, direction: 'up' | 'down'): Promise<void> {
  const meta = context.shared.get(MetaKey) as Set<string>;
  const write = () =>
    context.client.query(
      direction === 'up'
        ? `INSERT INTO ${MetaTable} (name) VALUES ($1)`
        : `DELETE FROM ${MetaTable} WHERE name = $1`,
      [name],
    );
  try {
    await write();
  } catch (error) {
    if ((error as { code?: string }).code !== '42P01') throw error;
    const forgotten = [...meta].filter((n) => n !== name);
    meta.clear();
    await context.client.query(CreateMeta);
    await write();
    context.notice(droppedMeta(direction, forgotten));
  }
  if (direction === 'up') meta.add(name);
  else meta.delete(name);
}

function droppedMeta(direction: 'up' | 'down', forgotten: string[]) {
  const what = `dropped SequelizeMeta, sequelize-cli's history table (\`queryInterface.dropAllTables()\` drops it with every other table in public)`;
  const recreated = `sequelize-cli's storage creates it again, empty, when it records this ${direction === 'down' ? 'rollback' : 'migration'}`;
  if (!forgotten.length)
    return {
      severity: 'note' as const,
      message: `${what}. ${recreated}; no other migration was recorded there, so nothing is forgotten.`,
    };
  const names = forgotten.slice(0, 5).map((n) => `\`${n}\``);
  return {
    severity: 'error' as const,
    message: `${what}. ${recreated}, and so forgets that ${forgotten.length === 1 ? 'an earlier migration' : `${forgotten.length} earlier migrations`} ran (${names.join(', ')}${forgotten.length > 5 ? ', ...' : ''}): the next \`db:migrate\` runs ${forgotten.length === 1 ? 'it' : 'them'} again. Drop only what this migration created.`,
  };
}
