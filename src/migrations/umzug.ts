import path from 'node:path';
import { messageOf } from '../core/errors.js';
import { type OrderRules, timestampVersions } from '../core/ordering.js';
import { ModuleExtensions } from '../modules.js';
import { moduleMigration, readModuleFolder } from './module-folder.js';
import { driverErrorDetail } from './sql.js';
import type { LoadedSet } from './types.js';
import { StepError } from './types.js';

export const UmzugRules: OrderRules = {
  tool: 'umzug',
  runsBy: 'name',
  namesMatter: false,
  outOfOrder:
    'umzug runs every migration its storage does not list, so production runs it after migrations that sort after it, an order no fresh database runs.',
  edited:
    'umzug never runs a migration its storage lists again, so production keeps what the old code did and fresh databases get the new code.',
  deleted:
    "umzug's storage still lists it on production; it can no longer be rolled back, and fresh databases no longer get what it made.",
};

/**
 * Reads a folder of umzug migration modules: each exports `up` and `down`, which receive
 * `{ name, path, context }` with a connected pg client as the context. Run in file-name order.
 */
export async function loadUmzugMigrations(dir: string, cwd: string): Promise<LoadedSet> {
  const modules = await readModuleFolder(
    dir,
    cwd,
    (name) => ModuleExtensions.includes(path.extname(name)) && !/\.d\.[cm]?ts$/.test(name),
    { name: 'umzug', empty: 'umzug migration modules (.js, .cjs, .mjs or .ts files)' },
  );
  // umzug's own names: `2024.01.31T12.00.00.create-users.js`; the digits of that prefix are the version.
  const versions = timestampVersions(
    modules.map((mod) => /^[\d.T_-]+/.exec(mod.name)?.[0].replace(/\D/g, '').slice(0, 18) || undefined),
  );
  const migrations = modules.map((mod, index) =>
    moduleMigration(
      mod,
      versions[index] ?? BigInt(index),
      'umzug runs each migration outside a transaction of its own',
      async (fn, context) => {
        // As in a deploy's own session: no lock_timeout an earlier migration set on ours.
        await context.client.query('RESET lock_timeout');
        try {
          await fn({ name: mod.name, path: mod.file, context: context.client });
        } catch (error) {
          throw new StepError(messageOf(error), mod.shown, undefined, driverErrorDetail(error), {
            cause: error,
          });
        }
      },
    ),
  );
  return {
    format: 'umzug',
    layout: `umzug migration modules (${modules.length})`,
    migrations,
    rules: UmzugRules,
    tracking: {
      tool: 'umzug',
      // umzug's SequelizeStorage default; another storage is named with history-table.
      table: 'public.SequelizeMeta',
      unknown: 'umzug cannot roll it back (no module for it), and fresh databases never get what it made.',
    },
    findings: [],
  };
}
