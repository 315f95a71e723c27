import path from 'node:path';
import { CannotCheck } from '../core/errors.js';
import { loadSqlMigrations } from './sql.js';
import type { Format, LoadedSet } from './types.js';

/** Reads a migration set in its format; `auto` detects the format from the folder. */
export async function loadMigrations(dir: string, format: Format, cwd: string): Promise<LoadedSet> {
  switch (format) {
    case 'auto':
    case 'sql':
      return loadSqlMigrations(dir, cwd);
    default:
      throw new CannotCheck(
        `Input 'format' is '${format}' for '${path.relative(cwd, dir) || '.'}', which this version cannot run yet. Supported now: auto, sql.`,
      );
  }
}
