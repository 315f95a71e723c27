import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, test } from '@jest/globals';
import { renderMarkdown, renderSummary } from '../src/core/markdown.js';
import type { Report } from '../src/core/report.js';
import { type RawInputs, resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { makeRepo, type Repo } from './helpers/git.js';
import { edgesOn, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/**
 * main's history has a migration whose down step leaves its table behind, and one that builds an
 * index on an existing table without CONCURRENTLY: a full check reports both.
 */
const Base = {
  'migrations/0001_users.up.sql': 'CREATE TABLE users (id int PRIMARY KEY, name text);\n',
  'migrations/0001_users.down.sql': 'DROP TABLE users;\n',
  'migrations/0002_items.up.sql': 'CREATE TABLE items (id int PRIMARY KEY);\n',
  'migrations/0002_items.down.sql': 'SELECT 1;\n',
  'migrations/0003_users_name.up.sql': 'CREATE INDEX users_name ON users (name);\n',
  'migrations/0003_users_name.down.sql': 'DROP INDEX users_name;\n',
};

async function repoWith(base: Record<string, string> = Base): Promise<Repo> {
  const repo = await makeRepo();
  dirs.push(repo.dir);
  await repo.write(base);
  repo.commit('base');
  repo.git('checkout', '-q', '-b', 'pr');
  return repo;
}

async function check(dir: string, raw: RawInputs = {}, pullRequest?: boolean): Promise<Report> {
  const settings = await resolveSettings(
    { 'migrations-dir': 'migrations', 'base-ref': 'main', ...raw },
    dir,
    pullRequest === undefined ? {} : { pullRequest },
  );
  return verify(settings, edgesOn(server));
}

/** Each kind of finding once: check, rule, migration. */
const summary = (report: Report) => [
  ...new Set(
    report.findings.map((f) => `${f.check} ${f.rule ? `${f.rule} ` : ''}${f.migration ?? ''}`).sort(),
  ),
];

const GoodAddition = {
  'migrations/0004_email.up.sql': 'ALTER TABLE users ADD COLUMN email text;\n',
  'migrations/0004_email.down.sql': 'ALTER TABLE users DROP COLUMN email;\n',
};

describe('scope: a pull request checks the migrations it changes', () => {
  test("with a base ref, the base's migrations are only applied: their broken down step and blocking index are not the PR's findings", async () => {
    const repo = await repoWith();
    await repo.write(GoodAddition);
    repo.commit('add 0004');
    const report = await check(repo.dir);
    // Only the PR's own ALTER (no lock_timeout before it): nothing of the base's migrations.
    expect(summary(report)).toEqual(['locks lock-timeout 0004_email']);
    expect(report.result).toBe('passed');
    const set = report.sets[0];
    expect(set?.scope).toBe('changed');
    expect(set?.unchecked).toBe(3);
    expect(set?.migrations.map((m) => m.id)).toEqual(['0004_email']);
    expect(set?.migrations[0]?.reversible).toBe('yes');
    expect(renderMarkdown(report)).toContain(
      'Scope `changed`: the first 3 migrations, which this branch shares with `main`, were applied without per-migration checks; 1 migration from `0004_email` on was checked. `scope: all` checks every migration (on main, nightly).',
    );
    expect(renderSummary(report)).toContain('  scope  migrations: changed: the first 3 migrations');
  });

  test('scope: all checks every migration again, and finds what the base branch got wrong', async () => {
    const repo = await repoWith();
    await repo.write(GoodAddition);
    repo.commit('add 0004');
    const report = await check(repo.dir, { scope: 'all' });
    expect(summary(report)).toEqual([
      'locks blocking-index 0003_users_name',
      'locks lock-timeout 0003_users_name',
      'locks lock-timeout 0004_email',
      'reversibility 0002_items',
      'rollback-all ',
    ]);
    expect(report.sets[0]?.scope).toBe('all');
    expect(report.sets[0]?.unchecked).toBeUndefined();
    expect(report.sets[0]?.migrations).toHaveLength(4);
  });

  test("the PR's own broken down step is found, and rolling back compares with the state the base's migrations leave", async () => {
    const repo = await repoWith();
    await repo.write({
      'migrations/0004_email.up.sql':
        'ALTER TABLE users ADD COLUMN email text;\nCREATE INDEX users_email ON users (email);\n',
      'migrations/0004_email.down.sql': 'DROP INDEX users_email;\n',
    });
    repo.commit('add 0004');
    const report = await check(repo.dir);
    expect(summary(report)).toEqual([
      'locks blocking-index 0004_email',
      'locks lock-timeout 0004_email',
      'reversibility 0004_email',
      'rollback-all ',
    ]);
    const rollback = report.findings.find((f) => f.check === 'rollback-all');
    // The leftover is the PR's column; the base's table items (left by 0002's down) is no leftover here.
    expect(rollback?.message).toMatch(
      /^Rolling back every migration from the newest to `0004_email` does not return to the schema before it: .*email/,
    );
    expect(rollback?.message).not.toContain('items');
  });

  test('an edit in the middle of the history: the walk starts at the edited migration', async () => {
    const repo = await repoWith();
    await repo.write({ 'migrations/0002_items.up.sql': 'CREATE TABLE items (id bigint PRIMARY KEY);\n' });
    repo.commit('edit 0002');
    const report = await check(repo.dir, { skip: 'locks' });
    expect(report.sets[0]?.unchecked).toBe(1);
    expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual(['0002_items', '0003_users_name']);
    // The edit itself, what it makes production miss (two-phase replay), and 0002's down step, now
    // that the branch walks it.
    expect(summary(report)).toEqual([
      'apply ',
      'ordering 0002_items',
      'reversibility 0002_items',
      'rollback-all ',
    ]);
  });

  test('an edit not committed yet counts as one: the working tree is what runs', async () => {
    const repo = await repoWith();
    await repo.write({ 'migrations/0002_items.up.sql': 'CREATE TABLE items (id bigint PRIMARY KEY);\n' });
    const report = await check(repo.dir, { skip: 'locks' });
    expect(report.sets[0]?.unchecked).toBe(1);
    expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual(['0002_items', '0003_users_name']);
  });

  test('shared migrations that cannot share a round trip (CONCURRENTLY, their own transaction control) are applied one by one', async () => {
    const repo = await repoWith({
      ...Base,
      'migrations/0004_concurrently.up.sql': 'CREATE INDEX CONCURRENTLY users_id_name ON users (id, name);\n',
      'migrations/0004_concurrently.down.sql': 'DROP INDEX CONCURRENTLY users_id_name;\n',
      'migrations/0005_own_tx.up.sql': 'BEGIN;\nCREATE TABLE notes (id int);\nCOMMIT;\n',
      'migrations/0005_own_tx.down.sql': 'DROP TABLE notes;\n',
      'migrations/0006_more.up.sql': 'ALTER TABLE notes ADD COLUMN body text;\n',
      'migrations/0006_more.down.sql': 'ALTER TABLE notes DROP COLUMN body;\n',
    });
    await repo.write({
      'migrations/0007_notes_user.up.sql': 'ALTER TABLE notes ADD COLUMN user_id int;\n',
      'migrations/0007_notes_user.down.sql': 'ALTER TABLE notes DROP COLUMN user_id;\n',
    });
    repo.commit('add 0007');
    const report = await check(repo.dir, { skip: 'locks' });
    expect(report.findings).toEqual([]);
    expect(report.sets[0]?.unchecked).toBe(6);
    expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual(['0007_notes_user']);
  });

  test('a branch that changes no migration applies them all and checks none', async () => {
    const repo = await repoWith();
    await repo.write({ 'README.md': 'docs\n' });
    repo.commit('docs');
    const report = await check(repo.dir);
    expect(report.findings).toEqual([]);
    expect(report.sets[0]?.unchecked).toBe(3);
    expect(report.sets[0]?.migrations).toEqual([]);
    expect(renderMarkdown(report)).toContain(
      'were applied without per-migration checks; this branch changes none.',
    );
  });

  test("a migration the branch shares with the base that does not apply is reported at its file and line, as the base's", async () => {
    const repo = await repoWith({
      ...Base,
      'migrations/0002_items.up.sql':
        'CREATE TABLE items (id int PRIMARY KEY);\nCREATE TABLE bad (x int REFERENCES nowhere);\n',
    });
    await repo.write(GoodAddition);
    repo.commit('add 0004');
    const report = await check(repo.dir, { skip: 'locks' });
    expect(report.findings.map((f) => `${f.check} ${f.migration} ${f.file}:${f.line}`)).toEqual([
      'apply 0002_items migrations/0002_items.up.sql:2',
    ]);
    expect(report.findings[0]?.message).toMatch(
      /^`0002_items` \(up\) fails on the database the migrations before it leave: .*nowhere.* It is one of the migrations this branch shares unchanged with main \([0-9a-f]{7}\), which `scope: changed` applies without checking/,
    );
    expect(report.result).toBe('failed');
  });
});

describe('which scope applies', () => {
  const settingsIn = async (raw: RawInputs, pullRequest?: boolean) => {
    const repo = await repoWith();
    return resolveSettings(
      { 'migrations-dir': 'migrations', ...raw },
      repo.dir,
      pullRequest === undefined ? {} : { pullRequest },
    );
  };

  test('changed with a base ref on a pull request or the command line; all without one, or on a push', async () => {
    expect((await settingsIn({ 'base-ref': 'main' })).scope).toBe('changed');
    expect((await settingsIn({ 'base-ref': 'main' }, true)).scope).toBe('changed');
    expect((await settingsIn({ 'base-ref': 'main' }, false)).scope).toBe('all');
    expect((await settingsIn({})).scope).toBe('all');
    expect((await settingsIn({ 'base-ref': 'main', scope: 'all' })).scope).toBe('all');
    expect((await settingsIn({ scope: 'changed' }, false)).scope).toBe('changed');
  });

  test('the config file sets it too, and a bad value names the allowed ones', async () => {
    const repo = await repoWith();
    await repo.write({ 'pg-migrate-verify.yml': 'migrations-dir: migrations\nscope: all\n' });
    expect((await resolveSettings({ 'base-ref': 'main' }, repo.dir)).scope).toBe('all');
    await expect(settingsIn({ scope: 'new' })).rejects.toThrow(
      "Input 'scope' is 'new'. Allowed values: changed, all.",
    );
  });
});
