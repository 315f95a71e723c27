import path from 'node:path';
import { CannotCheck } from '../core/errors.js';
import type { HistoryEntry } from '../core/ordering.js';
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

/** The set's migrations as its history: what the tool records, in which order, with which text. */
export function historyOf(set: LoadedSet): HistoryEntry[] {
  return set.migrations.map((m) => ({
    id: m.id,
    key: m.key,
    version: m.version,
    name: m.name,
    file: m.up.file,
    line: m.up.line,
    source: m.source,
    ...(m.repeatable ? { repeatable: true } : {}),
  }));
}
