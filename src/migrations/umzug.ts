import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CannotCheck, messageOf } from '../core/errors.js';
import type { OrderRules } from '../core/ordering.js';
import { exportOf, importModule, ModuleExtensions } from '../modules.js';
import type { LoadedSet, Migration, Step } from './types.js';
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

type Fn = (params: { name: string; path: string; context: unknown }) => Promise<unknown>;

/**
 * Reads a folder of umzug migration modules: each exports `up` and `down`, which receive
 * `{ name, path, context }` with a connected pg client as the context. Run in file-name order.
 */
export async function loadUmzugMigrations(dir: string, cwd: string): Promise<LoadedSet> {
  const shownDir = path.relative(cwd, dir) || '.';
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter(
        (e) => e.isFile() && ModuleExtensions.includes(path.extname(e.name)) && !/\.d\.[cm]?ts$/.test(e.name),
      )
      .map((e) => e.name)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (error) {
    throw new CannotCheck(
      `Input 'migrations-dir' points to '${shownDir}', which ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${messageOf(error)})`}. Set it to your umzug migrations folder.`,
    );
  }
  if (!names.length)
    throw new CannotCheck(`'${shownDir}' holds no umzug migration modules (.js, .cjs, .mjs or .ts files).`);

  const migrations: Migration[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const shown = path.join(shownDir, name);
    let mod: Record<string, unknown> | undefined;
    let loadError: unknown;
    try {
      mod = await importModule(file);
    } catch (error) {
      loadError = error;
    }
    const up = mod ? exportOf(mod, 'up') : undefined;
    const down = mod ? exportOf(mod, 'down') : undefined;
    const step = (direction: 'up' | 'down', fn: unknown): Step => ({
      file: shown,
      line: 1,
      noTransaction: 'umzug runs each migration outside a transaction of its own',
      async run(context) {
        if (typeof fn !== 'function') {
          throw new StepError(
            loadError
              ? `the module does not load: ${messageOf(loadError)}`
              : `it does not export an ${direction} function`,
            shown,
            undefined,
            undefined,
            { cause: loadError },
          );
        }
        try {
          await (fn as Fn)({ name, path: file, context: context.client });
        } catch (error) {
          const pgError = error as { detail?: string; hint?: string; code?: string };
          const detail = [
            pgError.detail && `DETAIL: ${pgError.detail}`,
            pgError.hint && `HINT: ${pgError.hint}`,
            pgError.code && `SQLSTATE: ${pgError.code}`,
          ]
            .filter(Boolean)
            .join('\n');
          throw new StepError(messageOf(error), shown, undefined, detail || undefined, { cause: error });
        }
      },
    });
    const digits = /^[\d.T_-]+/.exec(name)?.[0].replace(/\D/g, '').slice(0, 18);
    migrations.push({
      id: name.replace(/\.[^.]+$/, ''),
      version: [BigInt(digits || migrations.length)],
      key: name,
      name,
      source: await readFile(file, 'utf8'),
      up: step('up', up),
      ...(typeof down === 'function' || loadError
        ? { down: step('down', down) }
        : { noDown: 'no down function exported' }),
    });
  }
  return {
    format: 'umzug',
    layout: `umzug migration modules (${names.length})`,
    migrations,
    rules: UmzugRules,
    findings: [],
  };
}
