import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll } from '@jest/globals';
import { generateHistory, writeHistory } from '../../bench/generate.js';
import { tempDir } from './git.js';

/** Where a generated history's migration `n` (from 1) keeps its up or down step. */
export type HistoryFile = (n: number, side: 'up' | 'down') => string;

/**
 * Generated histories (the bench's) in folders of their own, removed after the file's tests:
 * `history(count, edit)` writes `count` correct migrations, then lets `edit` change some.
 */
export function useGeneratedHistories(prefix: string) {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  return async (count: number, edit: (file: HistoryFile, dir: string) => Promise<void>): Promise<string> => {
    const dir = await tempDir(prefix);
    dirs.push(dir);
    const generated = generateHistory(count);
    await writeHistory(dir, generated);
    await edit((n, side) => path.join(dir, `${generated[n - 1]?.id}.${side}.sql`), dir);
    return dir;
  };
}

/** A progress line without its durations. */
export const untimed = (line: string) => line.replace(/\d+(\.\d+)? ?(ms|s)\b/g, 'T');
