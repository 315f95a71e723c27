import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import { messageOf } from '../core/errors.js';
import { type OrderRules, timestampVersions } from '../core/ordering.js';
import { exportOf, importModule } from '../modules.js';
import { moduleMigration, readModuleFolder } from './module-folder.js';
import { describeDatabaseError } from './sql.js';
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
  return { module: { Sequelize: mod.Sequelize ?? mod.default?.Sequelize } as SequelizeModule, own: true };
}

/** Reads a sequelize-cli migrations folder: one module per migration, run in file-name order. */
export async function loadSequelizeMigrations(dir: string, cwd: string): Promise<LoadedSet> {
  const modules = await readModuleFolder(dir, cwd, (name) => MigrationFile.test(name), {
    name: 'sequelize-cli',
    empty: 'sequelize-cli migrations (.js, .cjs, .mjs or .ts files such as 20240101120000-create-users.js)',
  });
  const library = sequelizeFor(dir);
  const versions = timestampVersions(modules.map((mod) => Timestamped.exec(mod.name)?.[1]));
  const migrations = modules.map((mod, index) =>
    moduleMigration(
      mod,
      versions[index] ?? 0n,
      'sequelize-cli runs each migration outside a transaction of its own',
      async (fn, context, direction) => {
        const { instance, Sequelize } = await connect(context, await library);
        try {
          await fn(instance.getQueryInterface(), Sequelize);
        } catch (error) {
          throw new StepError(messageOf(error), mod.shown, undefined, detailOf(error), { cause: error });
        }
        // What sequelize-cli records, so a database migrated by the tool reads like one migrated by sequelize-cli.
        await context.client.query(
          direction === 'up'
            ? `INSERT INTO ${MetaTable} (name) VALUES ($1)`
            : `DELETE FROM ${MetaTable} WHERE name = $1`,
          [mod.name],
        );
      },
    ),
  );
  const { own } = await library;
  return {
    format: 'sequelize',
    layout: `sequelize-cli migrations (${modules.length} modules, sequelize ${own ? 'bundled with this tool' : 'from the project'})`,
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

/** Postgres's own words from a Sequelize error (it wraps the driver's error in `parent`), and its SQL. */
function detailOf(error: unknown): string | undefined {
  const parent = (error as { parent?: Partial<pg.DatabaseError> }).parent;
  const sql = (error as { sql?: string }).sql;
  const parts = [parent && describeDatabaseError(parent), sql && `SQL: ${sql}`].filter(Boolean);
  return parts.length ? parts.join('\n') : undefined;
}
