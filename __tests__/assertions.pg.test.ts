import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { renderMarkdown } from '../src/core/markdown.js';
import type { Report } from '../src/core/report.js';
import type { RawInputs } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { edgesOn, fixture, repoRoot, settingsFor, useTestServer } from './helpers/postgres.js';
import { pythonTest } from './helpers/python.js';

const server = useTestServer();

const migrations = fixture('assertions/migrations');
// Debian's python3 has psycopg2 (.ci/run installs it); the first python3 on PATH may not.
const python = '/usr/bin/python3';

async function check(style: string, raw: RawInputs = {}, lines: string[] = []): Promise<Report> {
  const settings = await settingsFor(migrations, {
    'assertions-dir': fixture(`assertions/${style}`),
    only: 'apply,reversibility,assertions',
    ...raw,
  });
  return verify(settings, edgesOn(server, lines));
}

/** `side:passed` for each run of one migration's assertions, in run order. */
const runsOf = (report: Report, id: string) =>
  (report.sets[0]?.migrations.find((m) => m.id === id)?.assertions ?? []).map(
    (r) => `${path.basename(r.file)} ${r.side}:${r.passed ? 'pass' : 'fail'}`,
  );

describe('a correct pair passes, in each style', () => {
  test('SQL, both spellings, several statements per file', async () => {
    const lines: string[] = [];
    const report = await check('sql-ok', {}, lines);
    expect(report.findings).toEqual([]);
    expect(report.result).toBe('passed');
    expect(runsOf(report, '0001_create_users')).toEqual([
      '0001_create_users.down.sql before:pass',
      '0001_create_users.up.sql before:fail',
      '0001_create_users.down.sql after:fail',
      '0001_create_users.up.sql after:pass',
      '0001_create_users.down.sql rolled back:pass',
      '0001_create_users.up.sql rolled back:fail',
    ]);
    expect(runsOf(report, '0002_add_status')).toHaveLength(6);
    expect(lines.find((l) => l.includes('0002_add_status'))).toMatch(/^✓ .* · assertions 6\/6 \(/);
    const md = renderMarkdown(report);
    expect(md).toContain('<summary>Assertions: 12 runs, 12 as expected</summary>');
    expect(md).toContain('| `0001_create_users` | `0001_create_users.up.sql` | ✅ fails');
  });

  test('TypeScript modules, without a build step, and no compiled file left behind', async () => {
    const report = await check('ts-ok');
    expect(report.findings).toEqual([]);
    expect(runsOf(report, '0003_add_email_index')).toEqual([
      '0003_add_email_index.down.ts before:pass',
      '0003_add_email_index.up.ts before:fail',
      '0003_add_email_index.down.ts after:fail',
      '0003_add_email_index.up.ts after:pass',
      '0003_add_email_index.down.ts rolled back:pass',
      '0003_add_email_index.up.ts rolled back:fail',
    ]);
    expect((await readdir(fixture('assertions/ts-ok'))).sort()).toEqual([
      '0003_add_email_index.down.ts',
      '0003_add_email_index.up.ts',
    ]);
  });

  test('TypeScript in the shipped CLI bundle, under plain node (no TypeScript loader around it)', () => {
    const child = spawnSync(
      process.execPath,
      [
        path.join(repoRoot, 'dist', 'cli', 'index.js'),
        'fixtures/assertions/migrations',
        '--assertions-dir',
        'fixtures/assertions/ts-ok',
        '--only',
        'apply,reversibility,assertions',
        '--database-url',
        server.adminUrl,
        '-q',
      ],
      { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 },
    );
    expect(child.stdout).toContain('pg-migrate-verify: PASSED: 4 migrations, 0 errors');
    expect(child.status).toBe(0);
  });

  pythonTest(['psycopg2'], 'a Python unittest through assert-command, with DATABASE_URL set', async () => {
    const report = await check('python-ok', { 'assert-command': `${python} {file}` });
    expect(report.findings).toEqual([]);
    expect(runsOf(report, '0001_create_users')).toEqual([
      '0001_create_users_down.py before:pass',
      '0001_create_users_up.py before:fail',
      '0001_create_users_down.py after:fail',
      '0001_create_users_up.py after:pass',
      '0001_create_users_down.py rolled back:pass',
      '0001_create_users_up.py rolled back:fail',
    ]);
  });
});

describe('defects are reported clearly', () => {
  test('SQL: proves nothing, fails after rollback, orphan file, hanging statement', async () => {
    const report = await check('sql-defects', { 'step-timeout': '1s' });
    const found = report.findings.map((f) => `${f.check} ${f.migration ?? '-'} ${f.file}:${f.line ?? ''}`);
    expect(found.sort()).toEqual(
      [
        'assertions - fixtures/assertions/sql-defects/0009_dropped_feature.up.sql:',
        'assertions 0002_add_status fixtures/assertions/sql-defects/0002_add_status.up.sql:',
        'assertions 0003_add_email_index fixtures/assertions/sql-defects/0003_add_email_index.down.sql:3',
        'assertions 0004_seed_roles fixtures/assertions/sql-defects/0004_seed_roles.down.sql:1',
      ].sort(),
    );
    const message = (id: string | undefined) => report.findings.find((f) => f.migration === id)?.message;
    expect(message('0002_add_status')).toContain(
      'The `0002_add_status` up assertion passes both before and after `0002_add_status` is applied, so it proves nothing',
    );
    expect(message('0004_seed_roles')).toBe(
      'The `0004_seed_roles` down assertion fails after `0004_seed_roles` is rolled back, though it passed before the migration: the statement at line 1 returned false, not true (SELECT count(*) = 0 FROM roles). The down step does not restore what the assertion checks. Make the down step undo it.',
    );
    expect(message('0003_add_email_index')).toContain('did not finish within the step timeout');
    expect(message(undefined)).toContain(
      "'fixtures/assertions/sql-defects/0009_dropped_feature.up.sql' is an assertion for `0009_dropped_feature`, which is not a migration in this set",
    );
    // The schema comparison cannot see the lost row; only the assertion does.
    expect(report.findings.filter((f) => f.check === 'reversibility')).toEqual([]);
  });

  test('not strict: an assertion that passes on both sides is no longer a finding', async () => {
    const report = await check('sql-defects', { 'step-timeout': '1s', 'assertions-strict': 'false' });
    expect(report.findings.map((f) => f.migration ?? '-').sort()).toEqual([
      '-',
      '0003_add_email_index',
      '0004_seed_roles',
    ]);
  });

  test('TypeScript: an up assertion that fails after the migration, with its error', async () => {
    const report = await check('ts-defects');
    expect(report.findings.map((f) => f.message)).toEqual([
      'The `0003_add_email_index` up assertion fails after it is applied: expected an index on lower(email), found: CREATE INDEX users_email_idx ON public.users USING btree (email). The migration does not do what its assertion expects; fix the migration or the assertion.',
    ]);
  });

  test('a command that hangs is stopped by the step timeout', async () => {
    const report = await check('python-defects', {
      'assert-command': `${python} {file}`,
      'step-timeout': '1s',
    });
    expect(report.findings.map((f) => `${f.migration}: ${f.message}`)).toEqual([
      '0001_create_users: The `0001_create_users` up assertion did not finish within the step timeout before it is applied, and was stopped. An assertion should read a few rows and return: look for a lock it waits on or a loop that never ends.',
    ]);
  });

  test('a file in another language without assert-command is a clear error', async () => {
    const report = await check('python-ok');
    expect(report.result).toBe('error');
    expect(report.error).toContain(
      "'fixtures/assertions/python-ok/0001_create_users_down.py' is an assertion in a language this tool does not run itself. Set 'assert-command'",
    );
  });
});
