import { rmSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { registerCleanup } from './lifecycle.js';

const TypeScript = ['.ts', '.mts', '.cts'];

/** Module files this tool can load: JavaScript in every flavour, and TypeScript without a build step. */
export const ModuleExtensions = ['.js', '.mjs', '.cjs', ...TypeScript];

/**
 * Imports a user's module (migration, assertion) by path. TypeScript is stripped of its types into
 * a hidden file next to the source, so its relative imports and packages resolve as they would,
 * and that file is removed at once.
 */
export async function importModule(file: string): Promise<Record<string, unknown>> {
  const ext = path.extname(file);
  if (!TypeScript.includes(ext)) return importUrl(pathToFileURL(file).href);
  const source = await readFile(file, 'utf8');
  const cjs = ext === '.cts';
  // Loaded only when a TypeScript module is: most runs never need it.
  const { transform } = await import('sucrase');
  const { code } = transform(source, {
    transforms: cjs ? ['typescript', 'imports'] : ['typescript'],
    filePath: file,
    disableESTransforms: true,
  });
  const temp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.pgmv-${process.pid}.${cjs ? 'cjs' : 'mjs'}`,
  );
  const unregister = registerCleanup({
    sync: () => rmSync(temp, { force: true }),
    async: () => rm(temp, { force: true }),
  });
  try {
    await writeFile(temp, code);
    return await importUrl(pathToFileURL(temp).href);
  } finally {
    await rm(temp, { force: true });
    unregister();
  }
}

function importUrl(url: string): Promise<Record<string, unknown>> {
  // Not the bundler's loader: the file is only known at run time.
  return import(/* webpackIgnore: true */ url) as Promise<Record<string, unknown>>;
}

/** A module's export `name`, looking through the `default` a CommonJS module gets when imported. */
export function exportOf(mod: Record<string, unknown>, name: string): unknown {
  if (name in mod && name !== 'default') return mod[name];
  const fallback = mod.default as Record<string, unknown> | undefined;
  if (name === 'default') {
    if (fallback && typeof fallback === 'object' && 'default' in fallback) return fallback.default;
    return fallback;
  }
  return fallback && typeof fallback === 'object' ? fallback[name] : undefined;
}

/**
 * The object a migration tool calls the export `name` on, so that `this` is what the module
 * expects: `module.exports` of a CommonJS module (sequelize-cli and umzug `require` it and call
 * `migration.up(...)`), a default-exported object, else the namespace.
 */
export function holderOf(mod: Record<string, unknown>, name: string): object {
  const fallback = mod.default as Record<string, unknown> | undefined;
  if (fallback && typeof fallback === 'object' && typeof fallback[name] === 'function') return fallback;
  return mod;
}

/** The package a module failed to find (`Cannot find module 'x'`, `Cannot find package 'x'`), if that is why it did not load. */
export function missingPackage(error: unknown): string | undefined {
  const code = (error as { code?: string })?.code;
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return undefined;
  const name = /Cannot find (?:module|package) '([^']+)'/.exec((error as Error).message)?.[1];
  // A relative or absolute path is a file of the project, not a package.
  return name && !/^[./]/.test(name) ? name : undefined;
}
