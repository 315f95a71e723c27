import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { CannotCheck, messageOf } from '../core/errors.js';
import type { OrderRules } from '../core/ordering.js';
import { exportOf, importModule } from '../modules.js';
import type { LoadedSet, Migration, Step, StepContext } from './types.js';
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

type Fn = (queryInterface: unknown, sequelize: unknown) => Promise<unknown>;

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
  return { module: { Sequelize: mod.Sequelize ?? mod.default?.Sequelize } as SequelizeModule, own: true };
}

/** Reads a sequelize-cli migrations folder: one module per migration, run in file-name order. */
export async function loadSequelizeMigrations(dir: string, cwd: string): Promise<LoadedSet> {
  const shownDir = path.relative(cwd, dir) || '.';
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile() && MigrationFile.test(e.name))
      .map((e) => e.name)
      // sequelize-cli sorts file names as text (byte order), and so do we.
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (error) {
    throw new CannotCheck(
      `Input 'migrations-dir' points to '${shownDir}', which ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${messageOf(error)})`}. Set it to your sequelize-cli migrations folder.`,
    );
  }
  if (!names.length)
    throw new CannotCheck(
      `'${shownDir}' holds no sequelize-cli migrations (.js, .cjs, .mjs or .ts files such as 20240101120000-create-users.js).`,
    );

  const library = sequelizeFor(dir);
  const migrations: Migration[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const shown = path.join(shownDir, name);
    const source = await readFile(file, 'utf8');
    let mod: Record<string, unknown> | undefined;
    let loadError: unknown;
    try {
      mod = await importModule(file);
    } catch (error) {
      loadError = error;
    }
    const up = mod ? exportOf(mod, 'up') : undefined;
    const down = mod ? exportOf(mod, 'down') : undefined;
    const id = name.replace(/\.[^.]+$/, '');
    const step = (direction: 'up' | 'down', fn: unknown): Step => ({
      file: shown,
      line: 1,
      noTransaction: 'sequelize-cli runs each migration outside a transaction of its own',
      async run(context) {
        if (typeof fn !== 'function') {
          const why = loadError
            ? `the module does not load: ${messageOf(loadError)}`
            : `it does not export an ${direction} function`;
          throw new StepError(why, shown, undefined, undefined, { cause: loadError });
        }
        const { instance, Sequelize } = await connect(context, await library);
        try {
          await (fn as Fn)(instance.getQueryInterface(), Sequelize);
        } catch (error) {
          throw new StepError(messageOf(error), shown, undefined, detailOf(error), { cause: error });
        }
        // What sequelize-cli records, so a database migrated by the tool reads like one migrated by sequelize-cli.
        await context.client.query(
          direction === 'up'
            ? `INSERT INTO ${MetaTable} (name) VALUES ($1)`
            : `DELETE FROM ${MetaTable} WHERE name = $1`,
          [name],
        );
      },
    });
    const version = BigInt(Timestamped.exec(name)?.[1] ?? '0');
    migrations.push({
      id,
      version: [version],
      key: name,
      name,
      source,
      up: step('up', up),
      ...(typeof down === 'function' || loadError
        ? { down: step('down', down) }
        : { noDown: 'no down function exported' }),
    });
  }
  const { own } = await library;
  return {
    format: 'sequelize',
    layout: `sequelize-cli migrations (${names.length} modules, sequelize ${own ? 'bundled with this tool' : 'from the project'})`,
    migrations,
    rules: SequelizeRules,
    historyTables: ['public.SequelizeMeta'],
    findings: [],
  };
}

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
    await context.client.query(
      `CREATE TABLE IF NOT EXISTS ${MetaTable} ("name" VARCHAR(255) NOT NULL UNIQUE, PRIMARY KEY ("name"))`,
    );
  }
  return { instance, Sequelize: library.module.Sequelize };
}

/** Postgres's own words from a Sequelize error (it wraps the driver's error in `parent`). */
function detailOf(error: unknown): string | undefined {
  const parent = (error as { parent?: { detail?: string; hint?: string; code?: string; sql?: string } })
    .parent;
  if (!parent) return undefined;
  return (
    [
      parent.detail && `DETAIL: ${parent.detail}`,
      parent.hint && `HINT: ${parent.hint}`,
      parent.code && `SQLSTATE: ${parent.code}`,
      (error as { sql?: string }).sql && `SQL: ${(error as { sql?: string }).sql}`,
    ]
      .filter(Boolean)
      .join('\n') || undefined
  );
}
