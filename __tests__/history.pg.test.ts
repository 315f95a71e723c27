import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { runCli } from '../src/cli.js';
import type { Report } from '../src/core/report.js';
import { resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { gitIn, makeRepo, type Repo, tempDir } from './helpers/git.js';
import { edgesOn, useTestServer, withoutLocks } from './helpers/postgres.js';

const server = useTestServer();
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const Base = {
  'migrations/0001_users.up.sql': '-- users\nCREATE TABLE users (id int PRIMARY KEY);\n',
  'migrations/0001_users.down.sql': 'DROP TABLE users;\n',
  'migrations/0003_orders.up.sql':
    'CREATE TABLE orders (id int PRIMARY KEY, user_id int REFERENCES users);\n',
  'migrations/0003_orders.down.sql': 'DROP TABLE orders;\n',
};

/** A repository whose main branch has `base`, with branch `pr` checked out on top of it. */
async function repoWith(base: Record<string, string> = Base): Promise<Repo> {
  const repo = await makeRepo();
  dirs.push(repo.dir);
  await repo.write(base);
  repo.commit('base');
  repo.git('checkout', '-q', '-b', 'pr');
  return repo;
}

async function check(dir: string, raw: Record<string, string> = {}): Promise<Report> {
  const settings = await resolveSettings(
    withoutLocks({ 'migrations-dir': 'migrations', 'base-ref': 'main', ...raw }),
    dir,
  );
  return verify(settings, edgesOn(server));
}

const summary = (report: Report) =>
  report.findings.map((f) => `${f.check} ${f.migration ?? ''} ${f.file ?? ''}:${f.line ?? ''}`);

describe('ordering against the base branch, from git alone', () => {
  test('a branch that only adds a migration after the base passes, and the report lists what it adds', async () => {
    const repo = await repoWith();
    await repo.write({
      'migrations/0004_email.up.sql': 'ALTER TABLE users ADD COLUMN email text;\n',
      'migrations/0004_email.down.sql': 'ALTER TABLE users DROP COLUMN email;\n',
    });
    repo.commit('add 0004');
    const report = await check(repo.dir);
    expect(report.findings).toEqual([]);
    expect(report.result).toBe('passed');
    expect(report.sets[0]?.base).toEqual({
      ref: 'main',
      commit: repo.git('rev-parse', 'main'),
      migrations: 2,
      added: ['0004_email'],
    });
  });

  test('an out-of-order addition says production would skip it', async () => {
    const repo = await repoWith();
    await repo.write({
      'migrations/0002_email.up.sql': 'ALTER TABLE users ADD COLUMN email text;\n',
      'migrations/0002_email.down.sql': 'ALTER TABLE users DROP COLUMN email;\n',
    });
    repo.commit('add 0002');
    const report = await check(repo.dir);
    expect(summary(report)).toEqual(['ordering 0002_email migrations/0002_email.up.sql:']);
    expect(report.findings[0]?.message).toMatch(
      /^`0002_email` is new on this branch but sorts before `0003_orders`, already on main \([0-9a-f]{7}\) and run by production\. golang-migrate records only the newest version it ran, so production never runs this one/,
    );
    expect(report.result).toBe('failed');
  });

  test('an edit of a migration the base has is found at its line, and two-phase replay shows what production lacks', async () => {
    const repo = await repoWith();
    await repo.write({
      'migrations/0001_users.up.sql':
        '-- users\nCREATE TABLE users (id int PRIMARY KEY, name text NOT NULL);\n',
    });
    repo.commit('edit 0001');
    const report = await check(repo.dir);
    expect(summary(report)).toEqual(['ordering 0001_users migrations/0001_users.up.sql:2', 'apply  :']);
    expect(report.findings[0]?.message).toContain('this branch edits it (first change at line 2)');
    expect(report.findings[1]?.message).toContain(
      'Production ends with another schema than a fresh database: column public.users.name: absent in production, present in a fresh database',
    );
  });

  test('a CRLF checkout of the same files is not an edit', async () => {
    const repo = await repoWith();
    await repo.write(
      Object.fromEntries(Object.entries(Base).map(([f, t]) => [f, `${t.replaceAll('\n', ' \r\n')}\r\n`])),
    );
    repo.commit('crlf');
    expect(repo.git('diff', '--stat', 'main')).not.toBe('');
    const report = await check(repo.dir);
    expect(report.findings).toEqual([]);
    expect(report.result).toBe('passed');
  });

  test('a renamed migration is reported as a rename that production would run again', async () => {
    const repo = await repoWith();
    repo.git('mv', 'migrations/0003_orders.up.sql', 'migrations/0004_orders.up.sql');
    repo.git('mv', 'migrations/0003_orders.down.sql', 'migrations/0004_orders.down.sql');
    repo.commit('rename');
    const report = await check(repo.dir);
    expect(summary(report)).toEqual([
      'ordering 0004_orders migrations/0004_orders.up.sql:',
      // The one statement of the file fails when run again: that is its line.
      'apply 0004_orders migrations/0004_orders.up.sql:1',
    ]);
    expect(report.findings[0]?.message).toContain(
      'renames it to `0004_orders` (version 3 becomes 4). Production recorded version 3 as applied, so it sees `0004_orders` as new and runs the same text a second time',
    );
    // Two-phase replay runs it a second time, as production would, and shows where that stops.
    expect(report.findings[1]?.message).toContain(
      '`0004_orders` (up) fails on the schema production has (the migrations on main (',
    );
    expect(report.findings[1]?.message).toContain('relation "orders" already exists');
  });

  test('a deleted migration is reported, and production keeps what it made', async () => {
    const repo = await repoWith();
    await repo.remove('migrations/0003_orders.up.sql', 'migrations/0003_orders.down.sql');
    await repo.write({
      'migrations/0004_email.up.sql': 'ALTER TABLE users ADD COLUMN email text;\n',
      'migrations/0004_email.down.sql': 'ALTER TABLE users DROP COLUMN email;\n',
    });
    repo.commit('delete 0003');
    const report = await check(repo.dir);
    expect(summary(report)).toEqual(['ordering 0003_orders migrations/0003_orders.up.sql:', 'apply  :']);
    expect(report.findings[0]?.message).toContain('`0003_orders` is on main (');
    expect(report.findings[1]?.message).toContain('table public.orders');
  });

  test('a second migration with a version the base has is a duplicate', async () => {
    const repo = await repoWith();
    await repo.write({ 'migrations/0003_other.up.sql': 'CREATE TABLE other (id int);\n' });
    repo.commit('duplicate');
    const report = await check(repo.dir);
    expect(summary(report)).toEqual(['ordering 0003_other migrations/0003_other.up.sql:']);
    expect(report.findings[0]?.message).toContain(
      "'migrations/0003_orders.up.sql' and 'migrations/0003_other.up.sql' have the same version (3)",
    );
  });

  test('dbmate file names that sort otherwise than their versions are reported with both orders', async () => {
    const repo = await repoWith({
      'migrations/20250817_users.sql':
        '-- migrate:up\nCREATE TABLE users (id int);\n-- migrate:down\nDROP TABLE users;\n',
    });
    await repo.write({
      'migrations/20250817120000_email.sql':
        '-- migrate:up\nALTER TABLE users ADD COLUMN email text;\n-- migrate:down\nALTER TABLE users DROP COLUMN email;\n',
    });
    repo.commit('add a wider version');
    const report = await check(repo.dir);
    const messages = report.findings.map((f) => f.message);
    expect(messages).toHaveLength(2);
    expect(messages[0]).toContain(
      "dbmate runs migrations in file-name order, which puts '20250817120000_email.sql' before '20250817_users.sql', but their versions say the opposite (20250817 < 20250817120000)",
    );
    expect(report.findings[0]?.detail).toContain(
      'dbmate (file-name order):\n  20250817120000_email.sql\n  20250817_users.sql',
    );
    // dbmate would also run it on production after the base's migration it sorts before.
    expect(messages[1]).toContain(
      '`20250817120000_email` is new on this branch but sorts before `20250817_users`',
    );
  });
});

describe('getting the base', () => {
  test('a shallow clone without the base branch fetches it from origin', async () => {
    const origin = await repoWith();
    await origin.write({
      'migrations/0004_email.up.sql': 'ALTER TABLE users ADD COLUMN email text;\n',
      'migrations/0004_email.down.sql': 'ALTER TABLE users DROP COLUMN email;\n',
    });
    origin.commit('add 0004');
    const work = await tempDir('pgmv-clone-');
    dirs.push(work);
    gitIn(work, 'clone', '-q', '--depth', '1', '--branch', 'pr', `file://${origin.dir}`, 'checkout');
    const clone = path.join(work, 'checkout');
    expect(gitIn(clone, 'rev-parse', '--is-shallow-repository')).toBe('true');
    expect(() => gitIn(clone, 'rev-parse', '--verify', '--quiet', 'main^{commit}')).toThrow();

    const report = await check(clone);
    expect(report.error).toBeUndefined();
    expect(report.findings).toEqual([]);
    expect(report.sets[0]?.base?.added).toEqual(['0004_email']);
    expect(report.sets[0]?.base?.commit).toBe(origin.git('rev-parse', 'main'));
  });

  test('the copy of the base is removed after the run', async () => {
    const repo = await repoWith();
    // Only this file's runs copy a base into the shared temp dir (the Action test uses its own TMPDIR).
    const copies = async () => (await readdir(os.tmpdir())).filter((n) => n.startsWith('pgmv-base-'));
    const before = await copies();
    const report = await check(repo.dir);
    expect(report.result).toBe('passed');
    expect(report.timings.base).toBeGreaterThan(0);
    expect(await copies()).toEqual(before);
  });

  test('a base ref that exists nowhere is a clear error', async () => {
    const repo = await repoWith();
    const report = await check(repo.dir, { 'base-ref': 'no-such-branch' });
    expect(report.result).toBe('error');
    expect(report.error).toContain(
      "Input 'base-ref' is 'no-such-branch', which is not a commit in this checkout, and 'git fetch origin no-such-branch' failed",
    );
  });

  test('a folder outside git is a clear error', async () => {
    const plain = await tempDir('pgmv-nogit-');
    dirs.push(plain);
    const repo = await makeRepo(plain);
    await repo.write(Base);
    const report = await check(plain);
    expect(report.result).toBe('error');
    expect(report.error).toContain(
      "Input 'base-ref' is 'main', but 'migrations' is not inside a git repository",
    );
  });

  test('a branch that adds the migrations folder compares with an empty history', async () => {
    const repo = await repoWith({ 'README.md': 'hello\n' });
    await repo.write(Base);
    repo.commit('first migrations');
    const report = await check(repo.dir);
    expect(report.findings).toEqual([]);
    expect(report.sets[0]?.base).toMatchObject({ migrations: 0, added: ['0001_users', '0003_orders'] });
  });
});

describe('accepted exceptions', () => {
  test('an accepted edit is reported with its reason, does not fail, and production is taken to have the new text', async () => {
    const repo = await repoWith();
    await repo.write({
      'migrations/0001_users.up.sql': '-- users\nCREATE TABLE users (id int PRIMARY KEY, name text);\n',
      'pg-migrate-verify.yml':
        'accept:\n  - id: 0001_users\n    reason: "production got the name column by hand in INC-42"\n  - id: 0009_gone\n    reason: stale entry\n',
    });
    repo.commit('edit 0001, accepted');
    const report = await check(repo.dir);
    expect(report.findings).toEqual([]);
    expect(report.result).toBe('passed');
    expect(report.accepted).toHaveLength(1);
    expect(report.accepted?.[0]).toMatchObject({
      check: 'ordering',
      migration: '0001_users',
      reason: 'production got the name column by hand in INC-42',
    });
    expect(report.sets[0]?.notes).toContain(
      'The config file accepts ordering findings for `0009_gone` ("stale entry"), but there are none: remove the entry.',
    );
  });

  test('an accept entry without a reason is refused, naming what it needs', async () => {
    const repo = await repoWith();
    await repo.write({ 'pg-migrate-verify.yml': 'accept:\n  - id: 0001_users\n' });
    await expect(check(repo.dir)).rejects.toThrow(
      "Config file 'pg-migrate-verify.yml' at 'accept.0.reason': Invalid input: expected string, received undefined. Each 'accept' entry needs 'id' (the migration id) and 'reason'",
    );
  });
});

test('the CLI takes --base-ref and prints the comparison', async () => {
  const repo = await repoWith();
  await repo.write({
    'migrations/0002_email.up.sql': 'ALTER TABLE users ADD COLUMN email text;\n',
    'migrations/0002_email.down.sql': 'ALTER TABLE users DROP COLUMN email;\n',
  });
  repo.commit('add 0002');
  let stdout = '';
  const code = await runCli(['migrations', '--base-ref', 'main', '--database-url', server.adminUrl], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stdout += t),
    env: process.env,
    cwd: repo.dir,
  });
  expect(code).toBe(1);
  expect(stdout).toMatch(/base {2}migrations: main at [0-9a-f]{7}, 2 migrations; adds 0002_email/);
  expect(stdout).toContain(
    'error  ordering  migrations/0002_email.up.sql  `0002_email` is new on this branch',
  );
  expect(existsSync(path.join(repo.dir, 'migrations'))).toBe(true);
});
