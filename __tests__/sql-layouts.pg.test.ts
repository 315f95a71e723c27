import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import pg from 'pg';
import type { Report } from '../src/core/report.js';
import { loadSqlMigrations } from '../src/migrations/sql.js';
import { verify } from '../src/verify.js';
import { edgesOn, fixture, openRunner, repoRoot, settingsFor, useTestServer } from './helpers/postgres.js';

const server = useTestServer();

async function run(name: string, raw = {}): Promise<{ report: Report; lines: string[] }> {
  const lines: string[] = [];
  const report = await verify(await settingsFor(fixture(name), raw), edgesOn(server, lines));
  return { report, lines };
}

const brief = (report: Report) =>
  report.findings.map((f) => ({ check: f.check, file: f.file, line: f.line, migration: f.migration }));

describe('correct histories pass in every layout', () => {
  test.each([
    ['sql-golang-ok', ['0001_create_users', '0002_add_mood', '0010_users_email_lower_idx'], 'golang-migrate'],
    [
      'sql-flyway-ok',
      ['V1__create_accounts', 'V1_1__add_balance', 'V2__index_name', 'V10__create_ledger'],
      'Flyway',
    ],
    [
      'sql-dbmate-ok',
      ['20240101120000_create_posts', '20240102090000_posts_title_idx', '20240103000000_seed_nothing'],
      'dbmate',
    ],
    ['sql-dirs-ok', ['0001_create_tags', '0002_tag_color'], 'directory pairs'],
    // diesel's own spelling and the compact one, in timestamp order (not folder-name order).
    [
      'sql-diesel-ok',
      [
        '00000000000000_diesel_initial_setup',
        '2018-01-18-172821_create_users',
        '20180120093000_add_email',
        '2018-02-01-000000_users_email_idx',
      ],
      'as diesel writes them',
    ],
  ])('%s', async (name, ids, layout) => {
    const { report, lines } = await run(name);
    expect(report.findings).toEqual([]);
    expect(report.result).toBe('passed');
    const set = report.sets[0];
    expect(set?.formatReason).toContain(layout);
    // Numeric version order: 10 after 2 (and Flyway 1.1 between 1 and 2).
    expect(set?.migrations.map((m) => m.id)).toEqual(ids);
    expect(set?.migrations.every((m) => m.up?.ok && m.down?.ok && m.reversible === 'yes')).toBe(true);
    // One line per migration as it runs (up, down, up again), then one per rollback step from the newest.
    expect(lines).toHaveLength(ids.length * 2);
    expect(lines[0]).toMatch(
      new RegExp(`^✓ +1/${ids.length} ${ids[0]}  up \\d+ ms · down \\d+ ms · up again \\d+ ms$`),
    );
    expect(lines.at(-1)).toMatch(new RegExp(`^✓ +1/${ids.length} ${ids[0]}  rollback \\d+ ms$`));
    expect(report.postgres?.provider).toBe('binaries');
  });
});

describe('broken histories are reported at the right file and line', () => {
  test('an up step with a syntax error after a multibyte comment', async () => {
    const { report } = await run('sql-golang-up-syntax-error');
    expect(report.result).toBe('failed');
    expect(brief(report)).toEqual([
      {
        check: 'apply',
        file: 'fixtures/sql-golang-up-syntax-error/0002_add_price.up.sql',
        line: 4,
        migration: '0002_add_price',
      },
    ]);
    expect(report.findings[0]?.message).toContain('syntax error at or near "text"');
    expect(report.findings[0]?.message).toContain('the migration after it never runs');
    expect(report.findings[0]?.detail).toContain('SQLSTATE: 42601');
    const ms = report.sets[0]?.migrations ?? [];
    expect(ms.map((m) => m.up?.ok ?? null)).toEqual([true, false, null]);
    // Rolling back what was applied still happens, and is clean.
    expect(ms[0]?.down?.ok).toBe(true);
  });

  test('a down step that fails at run time, located by its statement', async () => {
    const { report } = await run('sql-golang-down-fails');
    const at = {
      file: 'fixtures/sql-golang-down-fails/0002_create_orders.down.sql',
      line: 3,
      migration: '0002_create_orders',
    };
    expect(brief(report)).toEqual([
      { check: 'reversibility', ...at },
      { check: 'rollback-all', ...at },
    ]);
    expect(report.findings[0]?.message).toContain('table "orderz" does not exist');
    expect(report.sets[0]?.migrations.map((m) => m.reversible)).toEqual(['yes', 'no']);
  });

  test('a down step that leaves an enum type behind', async () => {
    const { report } = await run('sql-golang-leftovers');
    expect(report.findings.map((f) => [f.check, f.migration, f.file])).toEqual([
      ['reversibility', '0001_create_tickets', 'fixtures/sql-golang-leftovers/0001_create_tickets.down.sql'],
      ['reversibility', '0001_create_tickets', 'fixtures/sql-golang-leftovers/0001_create_tickets.up.sql'],
      ['rollback-all', undefined, undefined],
    ]);
    expect(report.findings[0]?.message).toContain(
      'enum public.ticket_state: present after down, absent before up',
    );
    expect(report.findings[1]?.message).toContain('type "ticket_state" already exists');
    expect(report.findings[2]?.message).toContain(
      'enum public.ticket_state: present after rolling back, absent before the first migration',
    );
  });

  test('a non-transactional file that fails half-way: located, and rollback-all is not trusted', async () => {
    const { report } = await run('sql-golang-concurrent-index-fails');
    expect(brief(report)).toEqual([
      {
        check: 'apply',
        file: 'fixtures/sql-golang-concurrent-index-fails/0002_event_indexes.up.sql',
        line: 3,
        migration: '0002_event_indexes',
      },
    ]);
    expect(report.sets[0]?.notes.join()).toContain('failed part-way outside a transaction');
  });

  test('a hanging migration is cancelled by the step timeout', async () => {
    const started = Date.now();
    const { report } = await run('sql-golang-hangs', { 'step-timeout': '1s' });
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(brief(report)).toEqual([
      {
        check: 'apply',
        file: 'fixtures/sql-golang-hangs/0002_waits_forever.up.sql',
        line: 1,
        migration: '0002_waits_forever',
      },
    ]);
    expect(report.findings[0]?.message).toContain('did not finish within the step timeout of 1 s');
    // The cancelled statement is gone from the server.
    const client = new pg.Client({ connectionString: server.adminUrl });
    await client.connect();
    const { rows } = await client.query(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3600)%' AND pid <> pg_backend_pid()",
    );
    await client.end();
    expect(rows[0].n).toBe(0);
  });

  test('a mis-named file is a finding: the tool would never run it', async () => {
    const { report } = await run('sql-golang-misnamed');
    expect(brief(report)).toEqual([
      {
        check: 'ordering',
        file: 'fixtures/sql-golang-misnamed/0002_add_body.sql',
        line: undefined,
        migration: undefined,
      },
    ]);
    expect(report.sets[0]?.notes.join()).toContain(
      'rollback-all stopped at `0003_add_title`: it has no down step',
    );
  });

  test('Flyway repeatables run after every versioned migration and have no down step', async () => {
    const { report } = await run('sql-flyway-repeatable');
    expect(report.result).toBe('passed');
    expect(report.sets[0]?.migrations.map((m) => [m.id, m.reversible])).toEqual([
      ['V1__create_cities', 'yes'],
      ['R__city_names', 'no-down'],
    ]);
  });
});

describe('diesel folders', () => {
  test('every folder is a migration whichever way its timestamp is spelled, in timestamp order', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgmv-diesel-'));
    try {
      // 24 migrations, dashed and compact spellings alternating, each needing the one before it.
      const stamps: string[] = [];
      for (let i = 0; i < 24; i++) {
        const day = String(i + 1).padStart(2, '0');
        const name = i % 2 ? `2020-03-${day}-101500_step_${i}` : `202003${day}101500_step_${i}`;
        stamps.push(name);
        await mkdir(path.join(dir, name));
        const up =
          i === 0
            ? 'CREATE TABLE t0 (id int PRIMARY KEY);'
            : `CREATE TABLE t${i} (id int PRIMARY KEY REFERENCES t${i - 1});`;
        await writeFile(path.join(dir, name, 'up.sql'), up);
        await writeFile(path.join(dir, name, 'down.sql'), `DROP TABLE t${i};`);
      }
      const { report } = await run(dir, { only: 'apply,ordering' });
      expect(report.findings).toEqual([]);
      expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual(stamps);

      // Dashed folders only, beside diesel's initial setup (the one compact name).
      for (const name of stamps.filter((_, i) => i % 2 === 0))
        await rm(path.join(dir, name), { recursive: true });
      await mkdir(path.join(dir, '00000000000000_diesel_initial_setup'));
      await writeFile(path.join(dir, '00000000000000_diesel_initial_setup', 'up.sql'), 'SELECT 1;');
      await writeFile(
        path.join(dir, '2020-03-02-101500_step_1', 'up.sql'),
        'CREATE TABLE t1 (id int PRIMARY KEY);',
      );
      for (let i = 3; i < 24; i += 2) {
        await writeFile(
          path.join(dir, stamps[i] as string, 'up.sql'),
          `CREATE TABLE t${i} (id int PRIMARY KEY REFERENCES t${i - 2});`,
        );
      }
      const dashed = await run(dir, { only: 'apply,ordering' });
      expect(dashed.report.findings).toEqual([]);
      expect(dashed.report.sets[0]?.migrations).toHaveLength(13);
      expect(dashed.report.sets[0]?.migrations[0]?.id).toBe('00000000000000_diesel_initial_setup');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a data file beside the folders is a note; metadata.toml can turn the transaction off', async () => {
    const { report } = await run('sql-diesel-ok');
    expect(report.sets[0]?.notes).toContain(
      "diesel runs only the migration folders, so this file beside them was not run: 'fixtures/sql-diesel-ok/demo_users.sql'.",
    );
    const loaded = await loadSqlMigrations(fixture('sql-diesel-ok'), repoRoot);
    expect(loaded.migrations.map((m) => [m.id, m.key, m.up.noTransaction ?? null])).toEqual([
      ['00000000000000_diesel_initial_setup', '00000000000000', null],
      ['2018-01-18-172821_create_users', '20180118172821', null],
      ['20180120093000_add_email', '20180120093000', null],
      ['2018-02-01-000000_users_email_idx', '20180201000000', 'metadata.toml: run_in_transaction = false'],
    ]);
  });

  test('folders and files that are almost migrations are named, never skipped in silence', async () => {
    const { report } = await run('sql-diesel-almost');
    expect(report.findings.map((f) => [f.severity, f.file])).toEqual([
      ['error', 'fixtures/sql-diesel-almost/2019-01-02-000000_add_title'],
      ['warning', 'fixtures/sql-diesel-almost/2019-01-03-000000_add_body.up.sql.orig'],
      ['error', 'fixtures/sql-diesel-almost/create_comments/up.sql'],
    ]);
    expect(report.findings[0]?.message).toBe(
      "'fixtures/sql-diesel-almost/2019-01-02-000000_add_title/' is named like a migration folder, but has no up.sql (it holds Up.sql, down.sql), so diesel skips it and it never runs. Give it an up.sql and a down.sql (lower case), or move it out of the migrations folder.",
    );
    expect(report.findings[2]?.message).toContain("diesel takes 'create' as its version");
    expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual(['2019-01-01-000000_create_posts']);
  });

  test('versions of different widths: diesel sorts them as text, and that is an ordering finding', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgmv-diesel-'));
    try {
      for (const name of ['9_create_a', '10_create_b']) {
        await mkdir(path.join(dir, name));
        await writeFile(path.join(dir, name, 'up.sql'), `CREATE TABLE ${name.slice(-1)} ();`);
      }
      const { report } = await run(dir, { only: 'apply,ordering' });
      // diesel runs '10' before '9'; so does this check, and it says why that is wrong.
      expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual(['10_create_b', '9_create_a']);
      expect(report.findings.map((f) => f.check)).toEqual(['ordering']);
      expect(report.findings[0]?.message).toContain(
        'diesel runs migrations in the text order of their versions (the folder name up to its first `_`, dashes removed), which puts',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('bad input ends in a clear message, never a throw', () => {
  test('mixed layouts', async () => {
    const { report } = await run('sql-mixed-layouts');
    expect(report.result).toBe('error');
    expect(report.error).toContain('mixes migration layouts');
    expect(report.error).toContain("'0001_a.up.sql'");
    expect(report.error).toContain("'V2__b.sql'");
  });

  test('missing and empty folders', async () => {
    const missing = await run('does-not-exist');
    expect(missing.report.error).toBe(
      "Input 'migrations-dir' points to 'fixtures/does-not-exist', which does not exist. Set it to the folder that holds your migrations.",
    );
    const empty = await mkdtemp(path.join(os.tmpdir(), 'pgmv-empty-'));
    try {
      await writeFile(path.join(empty, 'README.md'), 'nothing here');
      const { report } = await run(empty);
      expect(report.result).toBe('error');
      expect(report.error).toContain('which holds no migrations');
      expect(report.error).toContain('0001_create_users.up.sql');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('statements of ours that follow a step in its round trip', () => {
  async function setUp() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgmv-follow-'));
    await writeFile(path.join(dir, '0001_a.up.sql'), 'CREATE TABLE a (id int);\n');
    await writeFile(path.join(dir, '0001_a.down.sql'), 'DROP TABLE a;\n');
    await writeFile(path.join(dir, '0002_b.up.sql'), 'CREATE TABLE b (id int);\n');
    await writeFile(path.join(dir, '0003_bad.up.sql'), 'CREATE TABLE c (id int);\nSELECT 1/0;\n');
    const loaded = await loadSqlMigrations(dir, repoRoot);
    const db = await server.createDatabase();
    const runner = await openRunner(db.url);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const exists = async (table: string) =>
      (await client.query('SELECT to_regclass($1) IS NOT NULL AS e', [table])).rows[0].e as boolean;
    const done = async () => {
      await client.end();
      await runner.close();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    };
    return { m: loaded.migrations, runner, exists, done };
  }

  test('their results come back with the step; one that fails after the COMMIT does not fail the step', async () => {
    const { m, runner, exists, done } = await setUp();
    const [a, b] = m as [NonNullable<(typeof m)[0]>, NonNullable<(typeof m)[0]>];
    const up = await runner.up(a, ["SELECT 'x' AS one", 'SELECT 2 AS two']);
    expect(up.ok).toBe(true);
    expect(up.followed?.map((r) => r.rows)).toEqual([[{ one: 'x' }], [{ two: 2 }]]);
    // What follows fails: the step committed, so it went through; nothing comes back.
    const down = await runner.down(a, ['SELECT 1/0']);
    expect({ ok: down.ok, followed: down.followed, applied: runner.isApplied(a.id) }).toEqual({
      ok: true,
      followed: undefined,
      applied: false,
    });
    expect(await exists('a')).toBe(false);
    const next = await runner.up(b, ['SELECT 1/0']);
    expect([next.ok, runner.isApplied(b.id), await exists('b')]).toEqual([true, true, true]);
    await done();
  });

  test('a step that fails is reported at its own line, and what follows it does not run', async () => {
    const { m, runner, exists, done } = await setUp();
    const bad = m[2] as NonNullable<(typeof m)[0]>;
    const up = await runner.up(bad, ["SELECT 'x' AS one"]);
    expect({ ok: up.ok, line: up.error?.line, followed: up.followed }).toEqual({
      ok: false,
      line: 2,
      followed: undefined,
    });
    expect([runner.isApplied(bad.id), await exists('c')]).toEqual([false, false]);
    await done();
  });
});
