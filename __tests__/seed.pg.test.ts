import { describe, expect, test } from '@jest/globals';
import type { Report } from '../src/core/report.js';
import type { RawInputs } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { edgesOn, fixture, settingsFor, useTestServer } from './helpers/postgres.js';
import { pythonTest } from './helpers/python.js';

const server = useTestServer();

async function check(raw: RawInputs = {}, lines: string[] = []): Promise<Report> {
  const settings = await settingsFor(fixture('seed/migrations'), {
    only: 'apply,reversibility,rollback-all',
    ...raw,
  });
  return verify(settings, edgesOn(server, lines));
}

const found = (report: Report) => report.findings.map((f) => `${f.check} ${f.migration}`);

describe('seed data', () => {
  test('without rows, the history looks fine', async () => {
    const report = await check();
    expect(report.findings).toEqual([]);
  });

  test('with rows: a down step that loses them, and an up step that cannot run on them, are found', async () => {
    const lines: string[] = [];
    const report = await check(
      { 'seed-after': '0002_create_users', 'seed-file': 'fixtures/seed/seed.sql' },
      lines,
    );
    expect(lines).toContain('  seed data loaded after 0002_create_users');
    expect(found(report)).toEqual(['reversibility 0003_archive_roles', 'apply 0005_add_email']);
    expect(report.findings[0]?.message).toBe(
      '`0003_archive_roles` (down) loses rows that existed before its up step: public.roles (2 rows before, 0 after), public.users (2 rows before, 0 after). A rollback of this release would lose that data. Make the down step keep (or restore) the rows its up step did not add.',
    );
    expect(report.findings[0]?.file).toBe('fixtures/seed/migrations/0003_archive_roles.down.sql');
    // The rows came back for the migrations after it (the database was rebuilt with the seed).
    expect(report.findings[1]?.message).toContain('column "email" of relation "users" contains null values');
    // A one-statement file that fails while running (no error position) still gets its line.
    expect(report.findings[1]?.file).toBe('fixtures/seed/migrations/0005_add_email.up.sql');
    expect(report.findings[1]?.line).toBe(2);
  });

  pythonTest(['psycopg2'], 'a seed command gets DATABASE_URL and works the same', async () => {
    const report = await check({
      'seed-after': '0002_create_users',
      'seed-command': '/usr/bin/python3 fixtures/seed/seed.py',
    });
    expect(found(report)).toEqual(['reversibility 0003_archive_roles', 'apply 0005_add_email']);
  });

  test('a seed that does not fit the schema is a finding that says where', async () => {
    const report = await check({ 'seed-after': '0001_create_roles', 'seed-file': 'fixtures/seed/seed.sql' });
    expect(report.findings[0]).toMatchObject({ check: 'apply', migration: '0001_create_roles' });
    expect(report.findings[0]?.message).toContain(
      'The seed data, applied after `0001_create_roles`, failed: \'fixtures/seed/seed.sql\' failed: relation "users" does not exist.',
    );
  });

  test('bad seed settings are clear errors', async () => {
    const unknown = await check({ 'seed-after': '0099_nope', 'seed-file': 'fixtures/seed/seed.sql' });
    expect(unknown.error).toContain("Input 'seed-after' is '0099_nope', which is not a migration in");
    await expect(check({ 'seed-file': 'fixtures/seed/seed.sql' })).rejects.toThrow(
      "Input 'seed-file' is set, but 'seed-after' is not.",
    );
    await expect(
      check({ 'seed-after': '0002_create_users', 'seed-file': 'a.sql', 'seed-command': 'true' }),
    ).rejects.toThrow("Inputs 'seed-file' and 'seed-command' are both set.");
  });
});
