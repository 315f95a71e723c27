import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import type { Report } from '../src/core/report.js';
import { startPostgres } from '../src/postgres/index.js';
import { verify } from '../src/verify.js';
import { edgesOn, fixture, settingsFor, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
let report: Report;
beforeAll(async () => {
  report = await verify(await settingsFor(fixture('sql-reversibility-defects')), edgesOn(server));
});

const of = (id: string) => report.findings.filter((f) => f.migration === id && f.check === 'reversibility');
const messages = (id: string) => of(id).map((f) => `${f.severity}: ${f.message}`);

describe('each defect class is caught with a readable message', () => {
  test('a down that drops a misspelled table leaves the real one, and the up cannot run again', () => {
    expect(messages('0002_create_user_accounts')).toEqual([
      expect.stringContaining(
        'table public.user_accounts (with its 2 columns, 2 constraints, 1 index, 1 sequence): present after down, absent before up',
      ),
      expect.stringContaining(
        '(up, run again after its down) failed: relation "user_accounts" already exists',
      ),
    ]);
    expect(of('0002_create_user_accounts').map((f) => f.file)).toEqual([
      'fixtures/sql-reversibility-defects/0002_create_user_accounts.down.sql',
      'fixtures/sql-reversibility-defects/0002_create_user_accounts.up.sql',
    ]);
  });

  test('a restored column that lost NOT NULL and its default, and came back at another position', () => {
    expect(messages('0003_drop_nickname')).toEqual([
      expect.stringContaining(
        "column public.accounts.nickname: default differs (before up: 'anon'::text; after down: none); column public.accounts.nickname: not null differs (before up: true; after down: false)",
      ),
      expect.stringMatching(
        /^warning: .*table public\.accounts: column order differs \(before up: id, email, nickname, status, kind; after down: id, email, status, kind, nickname\)/,
      ),
    ]);
  });

  test('a partial index recreated without its WHERE clause', () => {
    expect(messages('0005_widen_active_idx')).toEqual([
      expect.stringContaining(
        "index public.accounts_active_idx on public.accounts: definition differs (before up: CREATE INDEX accounts_active_idx ON public.accounts USING btree (email) WHERE (status = 'active'::text); after down: CREATE INDEX accounts_active_idx ON public.accounts USING btree (email))",
      ),
    ]);
  });

  test('an index recreated on the wrong column', () => {
    expect(messages('0006_email_idx_lower')).toEqual([
      expect.stringContaining(
        'before up: CREATE INDEX accounts_email_idx ON public.accounts USING btree (email); after down: CREATE INDEX accounts_email_idx ON public.accounts USING btree (status)',
      ),
    ]);
  });

  test('a storage parameter set to a value instead of reset', () => {
    expect(messages('0007_accounts_autovacuum')).toEqual([
      expect.stringContaining(
        'table public.accounts: options differ (before up: none; after down: autovacuum_vacuum_scale_factor=0.2)',
      ),
    ]);
  });

  test('an extension and a function left behind', () => {
    expect(messages('0008_normalize_email')).toEqual([
      expect.stringContaining(
        'extension citext: present after down, absent before up; function public.normalize_email(text): present after down, absent before up',
      ),
      expect.stringContaining('function "normalize_email" already exists with same argument types'),
    ]);
  });

  test('an added enum label never removed', () => {
    expect(messages('0009_account_kind_partner')).toEqual([
      expect.stringContaining(
        'enum public.account_kind: labels differ (before up: person, company; after down: person, company, partner)',
      ),
      expect.stringContaining('enum label "partner" already exists'),
    ]);
  });

  test('a column order difference alone is a warning', () => {
    expect(of('0011_drop_audit_note').map((f) => [f.severity, f.check])).toEqual([
      ['warning', 'reversibility'],
    ]);
    expect(of('0011_drop_audit_note')[0]?.message).toContain(
      'table public.audit: column order differs (before up: id, note, at; after down: id, at, note)',
    );
  });

  test('an empty down file is run like any other, and must restore the schema', () => {
    expect(messages('0014_archive_marker')).toEqual([
      expect.stringContaining(
        'table public.archive_marker (with its 2 columns, 1 constraint, 1 index): present after down, absent before up',
      ),
      expect.stringContaining('relation "archive_marker" already exists'),
    ]);
  });
});

describe('without superuser (a managed database given as url)', () => {
  test('falls back to full catalog reads, says so, and finds the same', async () => {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query(
      "DROP ROLE IF EXISTS app_owner; CREATE ROLE app_owner LOGIN CREATEDB PASSWORD 'owner-pw'",
    );
    await admin.end();
    const url = new URL(server.adminUrl);
    url.username = 'app_owner';
    url.password = 'owner-pw';
    const limited = await verify(
      await settingsFor(fixture('sql-reversibility-defects'), {
        postgres: 'url',
        'database-url': url.toString(),
      }),
      { ...edgesOn(server), startPostgres },
    );
    expect(limited.postgres?.provider).toBe('url');
    expect(limited.sets[0]?.notes.join()).toContain(
      'may not create event triggers, so every step was followed by a full catalog read',
    );
    const brief = (r: Report) => r.findings.map((f) => [f.check, f.severity, f.migration, f.message]);
    expect(brief(limited)).toEqual(brief(report));
  });
});

describe('require-down', () => {
  test('off by default: no down step is a note; on: an error naming the migration', async () => {
    const defaults = await verify(await settingsFor(fixture('sql-golang-misnamed')), edgesOn(server));
    expect(defaults.findings.filter((f) => f.check === 'reversibility')).toEqual([]);
    expect(defaults.sets[0]?.migrations.map((m) => m.reversible)).toEqual(['yes', 'no-down']);
    const required = await verify(
      await settingsFor(fixture('sql-golang-misnamed'), { 'require-down': 'true' }),
      edgesOn(server),
    );
    expect(
      required.findings.filter((f) => f.check === 'reversibility').map((f) => [f.migration, f.file]),
    ).toEqual([['0003_add_title', 'fixtures/sql-golang-misnamed/0003_add_title.up.sql']]);
    expect(required.findings.find((f) => f.check === 'reversibility')?.message).toContain(
      'has no down step (no down file), and require-down is on',
    );
  });
});

describe('one bad migration does not produce findings for later good ones', () => {
  test('good migrations before and after the broken ones have no findings and are reversible', () => {
    // 0013 needs the table that 0012's down wrongly drops: it passes only if the state is restored.
    for (const id of [
      '0001_create_accounts',
      '0004_accounts_active_idx',
      '0010_create_audit',
      '0013_comment_audit',
    ])
      expect(of(id)).toEqual([]);
    const reversible = Object.fromEntries(
      (report.sets[0]?.migrations ?? []).map((m) => [m.id, m.reversible]),
    );
    expect(reversible).toEqual({
      '0001_create_accounts': 'yes',
      '0002_create_user_accounts': 'no',
      '0003_drop_nickname': 'no',
      '0004_accounts_active_idx': 'yes',
      '0005_widen_active_idx': 'no',
      '0006_email_idx_lower': 'no',
      '0007_accounts_autovacuum': 'no',
      '0008_normalize_email': 'no',
      '0009_account_kind_partner': 'no',
      '0010_create_audit': 'yes',
      // Only a warning: the schema is the same but for column order.
      '0011_drop_audit_note': 'yes',
      '0012_audit_at_idx': 'no',
      '0013_comment_audit': 'yes',
      '0014_archive_marker': 'no',
    });
    expect(report.findings.filter((f) => f.check === 'apply')).toEqual([]);
    expect(messages('0012_audit_at_idx')).toEqual([
      expect.stringContaining(
        'table public.audit (with its 2 columns, 1 constraint, 1 index, 1 sequence): absent after down, present before up',
      ),
      expect.stringContaining('relation "audit" does not exist'),
    ]);
  });

  test('each migration lists the objects it changes', () => {
    const changes = Object.fromEntries((report.sets[0]?.migrations ?? []).map((m) => [m.id, m.changes]));
    expect(changes['0001_create_accounts']).toEqual([
      '+ enum public.account_kind',
      '+ table public.accounts',
    ]);
    expect(changes['0003_drop_nickname']).toEqual(['- column public.accounts.nickname']);
    expect(changes['0006_email_idx_lower']).toEqual(['~ index public.accounts_email_idx on public.accounts']);
  });

  test('rollback-all reports the leftovers of the real schema, as a full rollback meets them', () => {
    const rollback = report.findings.filter((f) => f.check === 'rollback-all');
    expect(rollback).toHaveLength(1);
    // 0012's down drops audit, so rolling back 0011 (which adds a column to it) fails next.
    expect(rollback[0]?.migration).toBe('0011_drop_audit_note');
    expect(rollback[0]?.message).toContain('relation "audit" does not exist');
  });
});

describe('rebuilds after a broken down step', () => {
  test('the second rebuild copies the state the first one made and replays only the migrations since', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgmv-rebuild-'));
    // The server's own user appends to this file each time the first migration runs.
    await chmod(dir, 0o777);
    const runs = path.join(dir, 'runs');
    const files: Record<string, string> = {
      '0001_counted.up.sql': `CREATE TABLE a (id int);\nCOPY (SELECT 'run') TO PROGRAM 'cat >> ${runs}';\n`,
      '0001_counted.down.sql': 'DROP TABLE a;\n',
      '0002_b.up.sql': 'CREATE TABLE b (id int);\n',
      '0002_b.down.sql': 'SELECT 1;\n',
      '0003_c.up.sql': 'CREATE TABLE c (id int);\n',
      '0003_c.down.sql': 'DROP TABLE c;\n',
      '0004_d.up.sql': 'CREATE TABLE d (id int);\n',
      '0004_d.down.sql': 'SELECT 1;\n',
      '0005_e.up.sql': 'CREATE TABLE e (id int);\n',
      '0005_e.down.sql': 'DROP TABLE e;\n',
    };
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    try {
      // One migration at a time: how rebuilds reuse checkpoints (the passes would first try the whole set).
      const result = await verify(await settingsFor(dir, { skip: 'locks,rollback-all' }), {
        ...edgesOn(server),
        oneAtATime: true,
      });
      expect(result.findings.map((f) => `${f.check} ${f.migration}`)).toEqual([
        'reversibility 0002_b',
        'reversibility 0002_b',
        'reversibility 0004_d',
        'reversibility 0004_d',
      ]);
      expect(result.sets[0]?.migrations.map((m) => m.reversible)).toEqual(['yes', 'no', 'yes', 'no', 'yes']);
      // Up, up again, and the first rebuild's replay: the second rebuild starts from that one.
      const ran = (await readFile(runs, 'utf8')).trim().split('\n');
      expect(ran).toHaveLength(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
