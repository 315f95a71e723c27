import { appendFile, chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import pg from 'pg';
import type { Report } from '../src/core/report.js';
import type { RawInputs } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { type HistoryFile, untimed, useGeneratedHistories } from './helpers/history.js';
import { edgesOn, settingsFor, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
const generated = useGeneratedHistories('pgmv-passes-');

/** A generated history, then `edit`; the server's own user may append to a file in its folder. */
async function history(count: number, edit: (file: HistoryFile, dir: string) => Promise<void>) {
  return generated(count, async (file, dir) => {
    await chmod(dir, 0o777);
    await edit(file, dir);
  });
}

/** The run in passes or one migration at a time, and its progress lines. */
async function run(dir: string, oneAtATime: boolean, jobs = '1', raw: RawInputs = {}) {
  const lines: string[] = [];
  const report = await verify(await settingsFor(dir, { jobs, ...raw }), {
    ...edgesOn(server, lines),
    oneAtATime,
  });
  return { report, lines };
}

/** What a reader sees of a report, without the timings. */
const seen = (report: Report) => ({
  result: report.result,
  // The random comments differ from run to run.
  findings: report.findings.map((f) =>
    `${f.check} ${f.migration} ${f.file}:${f.line ?? ''}: ${f.message}`.replace(/0\.\d+/g, 'R'),
  ),
  rows: report.sets[0]?.migrations.map(
    (m) =>
      `${m.id} ${m.reversible} ${m.up?.ok} ${m.down?.ok} ${JSON.stringify(m.changes)} ${JSON.stringify(m.locks?.map((l) => [l.table, l.mode, l.direction]))}`,
  ),
  notes: report.sets[0]?.notes,
});

/** A step that appends a line to `runs` in the folder each time it runs. */
const counted = (dir: string) => `COPY (SELECT 'ran') TO PROGRAM 'cat >> ${path.join(dir, 'runs')}';\n`;
const runsIn = async (dir: string) =>
  (await readFile(path.join(dir, 'runs'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;

describe('the walk in passes: up, down from the newest, up again', () => {
  test('a correct history: what one migration at a time says, with each down step run once', async () => {
    const dir = await history(60, async (file, at) => {
      // A migration without a down step splits the walk; rolling back from the head stops there.
      await rm(file(30, 'down'));
      await appendFile(file(2, 'down'), counted(at));
    });
    const passes = await run(dir, false);
    const downs = await runsIn(dir);
    await rm(path.join(dir, 'runs'));
    const one = await run(dir, true);
    expect(one.report.result).toBe('passed');
    expect(seen(passes.report)).toEqual(seen(one.report));
    expect(passes.lines.map(untimed)).toEqual(one.lines.map(untimed));
    expect(seen(one.report).notes?.some((n) => n.includes('00030'))).toBe(true);
    // Below the migration without a down step, rolling back from the head never reaches migration
    // 2: its down step runs once either way.
    expect(await runsIn(dir)).toBe(1);
    expect(downs).toBe(1);
  });

  test('down steps run once in all: reversibility and rolling everything back are the same steps', async () => {
    const dir = await history(40, async (file, at) => {
      await appendFile(file(35, 'down'), counted(at));
    });
    const passes = await run(dir, false);
    expect(passes.report.result).toBe('passed');
    expect(await runsIn(dir)).toBe(1);
    await rm(path.join(dir, 'runs'));
    const one = await run(dir, true);
    expect(await runsIn(dir)).toBe(2);
    expect(seen(passes.report)).toEqual(seen(one.report));
    expect(passes.lines.map(untimed)).toEqual(one.lines.map(untimed));
  });

  test('with the locks check: the same locks, on the way up and down, and the same findings', async () => {
    const dir = await history(48, async (_file, at) => {
      // Two migrations in a row on one table that was there: what the newer one's down step gives
      // back (NOT NULL again) is its own doing, never the older one's (whose down step is checked
      // while the newer one's is finished).
      await writeFile(path.join(at, '00049_x.up.sql'), 'ALTER TABLE t00001 ADD COLUMN a int;\n');
      await writeFile(path.join(at, '00049_x.down.sql'), 'ALTER TABLE t00001 DROP COLUMN a;\n');
      await writeFile(
        path.join(at, '00050_y.up.sql'),
        'ALTER TABLE t00001 ALTER COLUMN name DROP NOT NULL;\n',
      );
      await writeFile(
        path.join(at, '00050_y.down.sql'),
        'ALTER TABLE t00001 ALTER COLUMN name SET NOT NULL;\n',
      );
    });
    const locks = { skip: 'drift-models' };
    const passes = await run(dir, false, '1', locks);
    const one = await run(dir, true, '1', locks);
    // Guards against a vacuous pass: down steps took locks on tables that were there, and were told.
    const downLocks = one.report.sets[0]?.migrations
      .flatMap((m) => m.locks ?? [])
      .filter((l) => l.direction === 'down');
    expect(downLocks?.length).toBeGreaterThan(5);
    const rules = (r: Report, id: string) =>
      r.findings.filter((f) => f.check === 'locks' && f.migration === id).map((f) => f.rule);
    expect(rules(one.report, '00050_y')).toContain('set-not-null');
    expect(rules(one.report, '00049_x')).not.toContain('set-not-null');
    expect(seen(passes.report)).toEqual(seen(one.report));
  });

  test('steps read together that turn out to share a table: walked again one at a time, with the same findings', async () => {
    const dir = await history(20, async (file, at) => {
      await appendFile(file(5, 'down'), counted(at));
      // Different names, one root: the serial column's sequence is the first step's too.
      await writeFile(path.join(at, '00021_a.up.sql'), 'CREATE TABLE a (id serial PRIMARY KEY);\n');
      await writeFile(path.join(at, '00021_a.down.sql'), 'DROP TABLE a;\n');
      await writeFile(path.join(at, '00022_b.up.sql'), 'ALTER TABLE a_id_seq OWNER TO CURRENT_USER;\n');
      await writeFile(path.join(at, '00022_b.down.sql'), 'ALTER TABLE a_id_seq OWNER TO CURRENT_USER;\n');
    });
    const passes = await run(dir, false);
    // One at a time, a down step runs twice: its own check, and rolling everything back.
    expect(await runsIn(dir)).toBe(2);
    await rm(path.join(dir, 'runs'));
    const one = await run(dir, true);
    expect(one.report.result).toBe('passed');
    expect(seen(passes.report)).toEqual(seen(one.report));
    expect(passes.lines.map(untimed)).toEqual(one.lines.map(untimed));
  });

  test("a partitioned table: what a step makes on it is made on its partitions, and is that step's", async () => {
    const dir = await history(4, async (_file, at) => {
      const write = (name: string, up: string, down: string) =>
        Promise.all([
          writeFile(path.join(at, `${name}.up.sql`), up),
          writeFile(path.join(at, `${name}.down.sql`), down),
        ]);
      await write(
        '00005_p',
        'CREATE TABLE p (id int, k int) PARTITION BY RANGE (k);\nCREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);\n',
        'DROP TABLE p;\n',
      );
      await write('00006_i', 'CREATE INDEX p_k ON p (k);\n', 'DROP INDEX p_k;\n');
      await write('00007_c', "COMMENT ON TABLE p1 IS 'first';\n", 'COMMENT ON TABLE p1 IS NULL;\n');
      await write('00008_z', 'ALTER TABLE p ADD COLUMN z int;\n', 'ALTER TABLE p DROP COLUMN z;\n');
    });
    for (const oneAtATime of [false, true]) {
      const { report } = await run(dir, oneAtATime);
      expect(seen(report).findings.filter((f) => !f.startsWith('locks'))).toEqual([]);
      const changes = Object.fromEntries(report.sets[0]?.migrations.map((m) => [m.id, m.changes]) ?? []);
      expect(changes['00006_i']).toEqual([
        '+ index public.p1_k_idx on public.p1',
        '+ index public.p_k on public.p',
      ]);
      expect(changes['00007_c']).toEqual(['~ table public.p1']);
      expect(changes['00008_z']).toEqual(['+ column public.p.z', '+ column public.p1.z']);
    }
  });

  test('steps sent to the server together each keep their own time, up and down', async () => {
    const dir = await history(12, async (file) => {
      await appendFile(file(5, 'up'), 'SELECT pg_sleep(0.3);\n');
      await appendFile(file(9, 'down'), 'SELECT pg_sleep(0.3);\n');
    });
    const { report } = await run(dir, false);
    expect(report.result).toBe('passed');
    const rows = report.sets[0]?.migrations ?? [];
    expect(rows).toHaveLength(12);
    // Only the sleeping step takes 300 ms: not the ones beside it in its round trip.
    const slow = (ms: number | undefined) => (ms ?? 0) >= 250;
    expect(rows.map((m) => slow(m.up?.ms))).toEqual(rows.map((_, i) => i === 4));
    expect(rows.map((m) => slow(m.down?.ms))).toEqual(rows.map((_, i) => i === 8));
    expect(rows.every((m) => (m.up?.ms ?? 0) < 1000 && (m.down?.ms ?? 0) < 1000)).toBe(true);
  });

  test('a few migrations on a state applied before them (a deploy gate) stay in passes', async () => {
    let file: HistoryFile | undefined;
    const dir = await history(40, async (f, at) => {
      file = f;
      // Adds a column to a table the target has: its down step runs once when the passes hold.
      await appendFile(f(38, 'down'), counted(at));
    });
    // The tables the last migrations touch were read once, in full, without prints (a walk of few
    // migrations): their down steps are checked all the same, without walking again.
    const target = await server.createDatabase();
    const client = new pg.Client({ connectionString: target.url });
    await client.connect();
    for (let n = 1; n <= 34; n++)
      await client.query(`BEGIN;${await readFile((file as HistoryFile)(n, 'up'), 'utf8')};COMMIT`);
    await client.query(
      'CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (34, false)',
    );
    await client.end();
    const { report } = await run(dir, false, '1', { 'target-database-url': target.url });
    await target.drop();
    expect(report.result).toBe('passed');
    expect(report.sets[0]?.target?.pending).toHaveLength(6);
    expect(await runsIn(dir)).toBe(1);
  });

  test.each(['1', '2'])(
    'a broken history (jobs %s): the same findings, rows, notes and lines as one migration at a time',
    async (jobs) => {
      const dir = await history(80, async (file) => {
        // A down step that leaves a column behind, one that fails, an up step that does not give
        // the same schema again (a comment that differs each time), a migration without a down step.
        await writeFile(file(10, 'down'), '-- keeps its column\n');
        await writeFile(file(61, 'down'), 'DROP TABLE no_such_table;\n');
        await appendFile(
          file(75, 'up'),
          "CREATE TABLE rnd (id int);\nDO $$ BEGIN EXECUTE format('COMMENT ON TABLE rnd IS %L', random()::text); END $$;\n",
        );
        await writeFile(file(75, 'down'), `${await readFile(file(75, 'down'), 'utf8')}DROP TABLE rnd;\n`);
        await rm(file(50, 'down'));
      });
      const passes = await run(dir, false, jobs);
      const one = await run(dir, true, '1');
      expect(one.report.result).toBe('failed');
      const found = one.report.findings.map((f) => `${f.check} ${f.migration?.slice(0, 5)}`);
      expect(found).toEqual(
        expect.arrayContaining([
          'reversibility 00010',
          'reversibility 00061',
          'reversibility 00075',
          'rollback-all 00061',
        ]),
      );
      expect(seen(passes.report)).toEqual(seen(one.report));
      expect(passes.lines.map(untimed)).toEqual(one.lines.map(untimed));
    },
  );
});
