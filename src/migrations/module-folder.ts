import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CannotCheck, messageOf } from '../core/errors.js';
import { exportOf, importModule } from '../modules.js';
import type { Migration, Step, StepContext } from './types.js';
import { StepError } from './types.js';

/** One migration module of a folder, imported once, with its `up` and `down` exports. */
export interface MigrationModule {
  /** File name, e.g. `20240101120000-create-users.cjs`. */
  name: string;
  /** Absolute path. */
  file: string;
  /** Relative to the working directory, for reports. */
  shown: string;
  source: string;
  up: unknown;
  down: unknown;
  /** Why the module could not be imported; its steps then fail with this. */
  loadError?: unknown;
}

/**
 * The migration modules in `dir` that `accept` takes, in byte order of their names (as sequelize-cli
 * and umzug run them), each imported. `tool` names the runner in messages.
 */
export async function readModuleFolder(
  dir: string,
  cwd: string,
  accept: (name: string) => boolean,
  tool: { name: string; empty: string },
): Promise<MigrationModule[]> {
  const shownDir = path.relative(cwd, dir) || '.';
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile() && accept(e.name))
      .map((e) => e.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (error) {
    throw new CannotCheck(
      `Input 'migrations-dir' points to '${shownDir}', which ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${messageOf(error)})`}. Set it to your ${tool.name} migrations folder.`,
    );
  }
  if (!names.length) throw new CannotCheck(`'${shownDir}' holds no ${tool.empty}.`);
  const modules: MigrationModule[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const found: MigrationModule = {
      name,
      file,
      shown: path.join(shownDir, name),
      source: await readFile(file, 'utf8'),
      up: undefined,
      down: undefined,
    };
    try {
      const mod = await importModule(file);
      found.up = exportOf(mod, 'up');
      found.down = exportOf(mod, 'down');
    } catch (error) {
      found.loadError = error;
    }
    modules.push(found);
  }
  return modules;
}

/**
 * The migration of one module: its steps call `call` with the exported function, outside a
 * transaction of ours (`noTransaction` says why); a module that did not load, or lacks the
 * export, fails its step with the reason.
 */
export function moduleMigration(
  mod: MigrationModule,
  version: bigint,
  noTransaction: string,
  call: (
    fn: (...args: unknown[]) => Promise<unknown>,
    context: StepContext,
    direction: 'up' | 'down',
  ) => Promise<void>,
): Migration {
  const step = (direction: 'up' | 'down', fn: unknown): Step => ({
    file: mod.shown,
    line: 1,
    noTransaction,
    async run(context) {
      if (typeof fn !== 'function') {
        throw new StepError(
          mod.loadError
            ? `the module does not load: ${messageOf(mod.loadError)}`
            : `it does not export an ${direction} function`,
          mod.shown,
          undefined,
          undefined,
          { cause: mod.loadError },
        );
      }
      await call(fn as (...args: unknown[]) => Promise<unknown>, context, direction);
    },
  });
  return {
    id: mod.name.replace(/\.[^.]+$/, ''),
    version: [version],
    key: mod.name,
    name: mod.name,
    source: mod.source,
    up: step('up', mod.up),
    ...(typeof mod.down === 'function' || mod.loadError
      ? { down: step('down', mod.down) }
      : { noDown: 'no down function exported' }),
  };
}
