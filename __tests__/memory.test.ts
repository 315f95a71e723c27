import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, test } from '@jest/globals';
import { repoRoot } from './helpers/postgres.js';

/**
 * The young-generation cap the shipped entry points set (src/memory.ts), in a process of its own
 * (it changes V8's flags): under allocation churn with survivors, as the catalog reads make, the
 * new space stops at the cap; without it V8 grows it to 32 MB.
 */
function newSpaceAfterChurn(cap: boolean): number {
  const tsx = pathToFileURL(path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const memory = pathToFileURL(path.join(repoRoot, 'src', 'memory.ts')).href;
  const script = `
    import v8 from 'node:v8';
    const { capYoungGeneration } = await import(${JSON.stringify(memory)});
    if (${cap}) capYoungGeneration(4 * 1024 * 1024);
    const kept = [];
    for (let i = 0; i < 3000; i++) {
      const rows = [];
      for (let j = 0; j < 2000; j++) rows.push({ key: 'table:' + j, props: { n: j, cols: [j, j + 1] } });
      if (i % 10 === 0) kept.push(rows[i % 2000]);
      // Let the observer see the collections, as the run's awaits do.
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(space.space_size);
  `;
  const run = spawnSync(process.execPath, ['--import', tsx, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    cwd: repoRoot,
  });
  expect(run.stderr).toBe('');
  return Number(run.stdout.trim());
}

test('the young generation stops growing at the cap; without it, it grows past it', () => {
  const MB = 1024 * 1024;
  expect(newSpaceAfterChurn(false)).toBeGreaterThan(8 * MB);
  expect(newSpaceAfterChurn(true)).toBeLessThanOrEqual(4 * MB + MB / 2);
});
