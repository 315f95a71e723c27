import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CannotCheck, messageOf, unreadableFolder } from '../core/errors.js';
import { Inputs } from '../core/inputs.js';
import { allowedRules } from '../core/locks.js';
import { exportOf, holderOf, importModule, missingPackage } from '../modules.js';
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
  /** The project the module belongs to (nearest package.json), relative to the working directory. */
  project: string;
  /** What `this` is when the tool calls `up`/`down` (sequelize-cli and umzug call them as methods). */
  holder?: object;
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
    throw unreadableFolder(
      Inputs.MigrationsDir,
      shownDir,
      error,
      `Set it to your ${tool.name} migrations folder.`,
    );
  }
  if (!names.length) throw new CannotCheck(`'${shownDir}' holds no ${tool.empty}.`);
  const modules: MigrationModule[] = [];
  const project = path.relative(cwd, projectRoot(dir)) || '.';
  for (const name of names) {
    const file = path.join(dir, name);
    const found: MigrationModule = {
      name,
      file,
      project,
      shown: path.join(shownDir, name),
      source: await readFile(file, 'utf8'),
      up: undefined,
      down: undefined,
    };
    try {
      const mod = await importModule(file);
      found.up = exportOf(mod, 'up');
      found.down = exportOf(mod, 'down');
      found.holder = holderOf(mod, 'up');
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
  const allow = allowedRules(mod.source);
  const step = (direction: 'up' | 'down', fn: unknown): Step => ({
    file: mod.shown,
    line: 1,
    noTransaction,
    ...(allow.length ? { allow } : {}),
    async run(context) {
      if (typeof fn !== 'function') {
        throw new StepError(
          mod.loadError ? loadFailure(mod) : `it does not export an ${direction} function`,
          mod.shown,
          undefined,
          undefined,
          { cause: mod.loadError, ranNothing: true },
        );
      }
      // Called as a method of the module, as the tools call it; then wait for what it did not await.
      const invoke = async (...args: unknown[]) => {
        try {
          return await (fn as (...a: unknown[]) => unknown).apply(mod.holder, args);
        } finally {
          await context.settle();
        }
      };
      await call(invoke, context, direction);
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

/** Why a module did not load, with the fix when a package it imports is not installed. */
function loadFailure(mod: MigrationModule): string {
  const text = `the module does not load: ${messageOf(mod.loadError).split('\n')[0]}`;
  const missing = missingPackage(mod.loadError);
  if (!missing) return text;
  return `${text}. Install the project's dependencies first (\`npm install\` in '${mod.project}'), so that '${missing}' resolves from the migrations folder`;
}

/** The nearest folder at or above `dir` with a package.json, else `dir`. */
function projectRoot(dir: string): string {
  for (let at = dir; ; at = path.dirname(at)) {
    if (existsSync(path.join(at, 'package.json'))) return at;
    if (path.dirname(at) === at) return dir;
  }
}
