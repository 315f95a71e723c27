import { appendFile, writeFile } from 'node:fs/promises';
import { describe, expect, test } from '@jest/globals';
import { rangeStarts } from '../src/checks/walk.js';
import type { Report } from '../src/core/report.js';
import { verify } from '../src/verify.js';
import { untimed, useGeneratedHistories } from './helpers/history.js';
import { edgesOn, settingsFor, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
const history = useGeneratedHistories('pgmv-ranges-');

/** The run with `jobs`, what users read of it, and what it logged. */
async function run(dir: string, jobs: string) {
  const info: string[] = [];
  const lines: string[] = [];
  const report = await verify(await settingsFor(dir, { jobs }), {
    ...edgesOn(server, lines),
    log: { info: (m) => info.push(m), warn() {}, debug() {} },
  });
  return { report, info, lines };
}

/** What a reader sees of a report, without the timings. */
const seen = (report: Report) => ({
  result: report.result,
  findings: report.findings.map((f) => `${f.check} ${f.migration} ${f.file}: ${f.message}`),
  rows: report.sets[0]?.migrations.map((m) => `${m.id} ${m.reversible} ${m.up?.ok} ${m.down?.ok}`),
  notes: report.sets[0]?.notes,
});

describe('a long walk cut into ranges, each on its own database', () => {
  test('ranges start later the further in they are, never below the minimum, one with a seed', () => {
    expect(rangeStarts({ jobs: 1 }, 0, 1000)).toEqual([0]);
    expect(rangeStarts({ jobs: 4 }, 0, 40)).toEqual([0]);
    const two = rangeStarts({ jobs: 2 }, 0, 1000);
    expect(two).toHaveLength(2);
    // A later migration costs more (the schema is larger): the first range is the longer one.
    expect(two[1]).toBeGreaterThan(500);
    expect(two[1]).toBeLessThan(600);
    expect(rangeStarts({ jobs: 4 }, 900, 1000)).toEqual([900, 926, 951, 976]);
    expect(rangeStarts({ jobs: 4, seed: { after: 'x', file: 'seed.sql' } as never }, 0, 1000)).toEqual([0]);
  });

  test('the same findings, rows and notes as one database, in the same order, for defects in every range', async () => {
    const dir = await history(80, async (file) => {
      // Range 1: a down step that leaves a table behind.
      await writeFile(file(4, 'down'), '-- forgot the index\n');
      // Range 2: a down step that fails, and one whose up step is not repeatable.
      await writeFile(file(61, 'down'), 'DROP TABLE no_such_table;\n');
      await appendFile(file(70, 'up'), 'CREATE TABLE IF NOT EXISTS extra_70 (id int);\n');
    });
    const one = await run(dir, '1');
    const two = await run(dir, '2');
    expect(two.info.some((m) => /walking 80 migrations in 2 ranges at once/.test(m))).toBe(true);
    expect(one.info.some((m) => /ranges at once/.test(m))).toBe(false);
    expect(one.report.result).toBe('failed');
    expect(seen(two.report)).toEqual(seen(one.report));
    expect(seen(one.report).findings.map((f) => f.split(' ').slice(0, 2).join(' '))).toEqual([
      'reversibility 00004_create_r00004_ref_t00001',
      'reversibility 00004_create_r00004_ref_t00001',
      'reversibility 00061_view_00061',
      'reversibility 00070_enum_00070',
      // Rolling everything back stops at the first down step that fails, from the head.
      'rollback-all 00061_view_00061',
    ]);
    // The progress lines a terminal shows come in the walk's order.
    expect(two.lines.map(untimed)).toEqual(one.lines.map(untimed));
  });

  test('a migration that does not apply ends the walk there: what the range after it found is dropped', async () => {
    const dir = await history(80, async (file) => {
      await writeFile(file(20, 'up'), 'CREATE TABLE r00020 (id bigint REFERENCES no_such_table);\n');
      await writeFile(file(70, 'down'), '-- forgot it\n');
    });
    const one = await run(dir, '1');
    const two = await run(dir, '2');
    expect(seen(two.report)).toEqual(seen(one.report));
    expect(one.report.findings.map((f) => `${f.check} ${f.migration}`)).toEqual([
      'apply 00020_create_r00020_ref_t00001',
    ]);
    // The rows after it are as a walk that stopped there leaves them: not run.
    expect(two.report.sets[0]?.migrations[69]?.down).toBeNull();
  });

  test('what down steps in both ranges leave behind meets the down steps below it, as in one walk', async () => {
    const dir = await history(80, async (file) => {
      // A column left on a table that an earlier migration creates (and its down step drops), and
      // a view left on a table of the first range: rolling back from the head trips over the view.
      await writeFile(file(66, 'down'), '-- keeps its column\n');
      await writeFile(file(69, 'down'), '-- keeps its view\n');
    });
    const one = await run(dir, '1');
    const two = await run(dir, '2');
    expect(two.info.some((m) => /in 2 ranges at once/.test(m))).toBe(true);
    expect(seen(two.report)).toEqual(seen(one.report));
    expect(one.report.findings.map((f) => `${f.check} ${f.migration}`)).toContain(
      'rollback-all 00032_create_t00032',
    );
  });
});
