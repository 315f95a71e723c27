import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Report } from '../src/core/report.js';
import type { RawInputs } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { edgesOn, fixture, settingsFor, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pgmv-drift-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function run(dir: string, raw: RawInputs, env: NodeJS.ProcessEnv = process.env): Promise<Report> {
  return verify(await settingsFor(dir, raw), { ...edgesOn(server), env });
}

describe('drift-snapshot', () => {
  test('--update-snapshot writes a deterministic file; unchanged passes; a changed migration is reported by object', async () => {
    const dir = path.join(tmp, 'migrations');
    await cp(fixture('sql-golang-ok'), dir, { recursive: true });
    const file = path.join(tmp, 'schema.snapshot.yml');

    const missing = await run(dir, { 'snapshot-file': file });
    expect(missing.findings.map((f) => [f.check, f.message])).toEqual([
      [
        'drift-snapshot',
        expect.stringContaining('does not exist. Run pg-migrate-verify with --update-snapshot'),
      ],
    ]);

    const written = await run(dir, { 'snapshot-file': file, 'update-snapshot': 'true' });
    expect(written.result).toBe('passed');
    expect(written.sets[0]?.notes.join()).toContain('Wrote the snapshot');
    const text = await readFile(file, 'utf8');
    // Each table is followed by its parts; values are plain YAML a reviewer can read.
    expect(text).toContain(
      'table public.users:\n  columns:\n    - id\n    - email\n    - created_at\n    - mood\n',
    );
    expect(text).toContain('column public.users.email:\n  notNull: true\n  type: text\n');
    expect(text.indexOf('table public.users:')).toBeLessThan(text.indexOf('column public.users.email:'));

    const again = await run(dir, { 'snapshot-file': file, 'update-snapshot': 'true' });
    expect(again.sets[0]?.notes.join()).toContain('is up to date');
    expect(await readFile(file, 'utf8')).toBe(text);

    expect((await run(dir, { 'snapshot-file': file })).findings).toEqual([]);

    await writeFile(
      path.join(dir, '0010_users_email_lower_idx.up.sql'),
      'CREATE INDEX CONCURRENTLY users_email_lower_idx ON users (lower(email)) WHERE mood IS NOT NULL;\n',
    );
    const drifted = await run(dir, { 'snapshot-file': file });
    expect(drifted.result).toBe('failed');
    expect(drifted.findings.map((f) => f.check)).toEqual(['drift-snapshot']);
    expect(drifted.findings[0]?.message).toContain(
      'index public.users_email_lower_idx on public.users: definition differs (in the snapshot file: CREATE INDEX users_email_lower_idx ON public.users USING btree (lower(email)); after all migrations: CREATE INDEX users_email_lower_idx ON public.users USING btree (lower(email)) WHERE (mood IS NOT NULL))',
    );
  });

  test('an edited snapshot (an object removed by hand) is reported too', async () => {
    const file = path.join(tmp, 'edited.yml');
    await run(fixture('sql-dirs-ok'), { 'snapshot-file': file, 'update-snapshot': 'true' });
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace(/enum public\.color:\n( {2}.*\n)+/, ''));
    const report = await run(fixture('sql-dirs-ok'), { 'snapshot-file': file });
    expect(report.findings[0]?.message).toContain(
      'enum public.color: present after all migrations, absent in the snapshot file',
    );
  });
});

describe('drift-models with a real ORM (Sequelize)', () => {
  const dir = fixture('drift-models-sequelize/migrations');
  const raw = { 'models-command': 'node fixtures/drift-models-sequelize/sync-models.cjs' };

  test('models that match the migrations pass', async () => {
    const report = await run(dir, raw);
    expect(report.findings).toEqual([]);
    expect(report.sets[0]?.notes.join()).toMatch(/models-command built \d+ objects/);
  });

  test('a model field without a migration is reported', async () => {
    const report = await run(dir, raw, { ...process.env, MODEL_DRIFT: '1' });
    expect(report.findings.map((f) => [f.check, f.severity])).toEqual([['drift-models', 'error']]);
    expect(report.findings[0]?.message).toContain(
      'column public.users.nickname: present in the models, absent after all migrations',
    );
  });

  test('a failing models-command is a finding with its output', async () => {
    const report = await run(dir, {
      'models-command': 'node -e "console.error(\'no models here\'); process.exit(3)"',
    });
    expect(report.findings[0]?.message).toContain('failed with exit code 3');
    expect(report.findings[0]?.detail).toBe('no models here');
  });
});
