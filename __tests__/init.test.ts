import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import YAML from 'yaml';
import { runCli } from '../src/cli.js';
import { ActionRepository } from '../src/core/identity.js';
import { resolveSettings } from '../src/settings.js';

const repoRoot = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function repo(layout: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'pgmv-init-'));
  dirs.push(root);
  for (const [to, from] of Object.entries(layout)) {
    if (from.startsWith('fixtures/'))
      await cp(path.join(repoRoot, from), path.join(root, to), { recursive: true });
    else {
      await mkdir(path.dirname(path.join(root, to)), { recursive: true });
      await writeFile(path.join(root, to), from);
    }
  }
  return root;
}

async function init(root: string, args: string[] = [], answer?: string) {
  let stdout = '';
  let stderr = '';
  const asked: string[] = [];
  const code = await runCli(['init', ...args], {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: process.env,
    cwd: root,
    ...(answer !== undefined
      ? {
          ask: async (q: string) => {
            asked.push(q);
            return answer;
          },
        }
      : {}),
  });
  return { code, stdout, stderr, asked };
}

describe('pg-migrate-verify init', () => {
  test('finds the one migrations folder, writes a config the tool reads and a PR workflow, then never overwrites them', async () => {
    const root = await repo({
      'db/migrations': 'fixtures/sql-golang-ok',
      // Dependencies and folders of SQL that are no migrations are not candidates.
      'node_modules/some-lib/migrations': 'fixtures/sql-flyway-ok',
      'docs/queries/report.sql': 'SELECT 1;\n',
    });
    const first = await init(root);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('wrote pg-migrate-verify.yml\nwrote .github/workflows/migrations.yml\n');
    expect(first.stdout).toContain('npx pg-migrate-verify');
    const settings = await resolveSettings({}, root);
    expect(settings.sets.map((s) => [path.relative(root, s.dir), s.format])).toEqual([
      ['db/migrations', 'sql'],
    ]);
    const workflow = YAML.parse(await readFile(path.join(root, '.github/workflows/migrations.yml'), 'utf8'));
    expect(workflow.permissions).toEqual({ contents: 'read', 'pull-requests': 'write' });
    expect(workflow.on).toHaveProperty('pull_request');
    expect(workflow.jobs.verify.steps.map((s: { uses?: string }) => s.uses)).toEqual([
      'actions/checkout@v4',
      `${ActionRepository}@v1`,
    ]);
    // Run again over files someone edited: both are left as they are.
    await writeFile(path.join(root, 'pg-migrate-verify.yml'), 'migrations-dir: db/migrations\n# mine\n');
    const again = await init(root);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(
      'left pg-migrate-verify.yml as it is: it exists\nleft .github/workflows/migrations.yml as it is: it exists\n',
    );
    expect(await readFile(path.join(root, 'pg-migrate-verify.yml'), 'utf8')).toContain('# mine');
  });

  test('several folders: it asks at a terminal, and lists them (exit 2) where nobody can answer', async () => {
    const root = await repo({
      'services/accounts/db/migrations': 'fixtures/sql-golang-ok',
      'services/billing/sql': 'fixtures/sql-flyway-ok',
      'tools/alembic': 'fixtures/alembic-project',
    });
    const unattended = await init(root);
    expect(unattended.code).toBe(2);
    expect(unattended.stderr).toContain(
      'Found 3 folders of migrations:\n  1. services/accounts/db/migrations (sql: ',
    );
    expect(unattended.stderr).toContain('  3. tools/alembic (alembic: an alembic project (alembic.ini))');
    expect(unattended.stderr).toContain('Run `pg-migrate-verify init <folder>`');
    const asked = await init(root, [], '2');
    expect(asked.code).toBe(0);
    expect(asked.asked[0]).toContain('Which one (1-3)?');
    expect(YAML.parse(await readFile(path.join(root, 'pg-migrate-verify.yml'), 'utf8'))).toMatchObject({
      'migrations-dir': 'services/billing/sql',
      format: 'sql',
    });
  });

  test('a folder given is taken; an alembic project gets its command; nothing found, or no migrations there, is exit 2', async () => {
    const root = await repo({ 'backend/alembic': 'fixtures/alembic-project', 'README.md': '# app\n' });
    const given = await init(root, ['backend/alembic']);
    expect(given.code).toBe(0);
    expect(YAML.parse(await readFile(path.join(root, 'pg-migrate-verify.yml'), 'utf8'))).toMatchObject({
      'migrations-dir': 'backend/alembic',
      format: 'alembic',
      'alembic-command': 'alembic',
    });
    const empty = await repo({ 'README.md': '# nothing\n' });
    const none = await init(empty);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Found no migrations under');
    const wrong = await init(empty, ['.']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("'.' holds no migrations the tool recognises");
  });

  test("the Action's repository is package.json's", async () => {
    const pkg = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8'));
    expect(pkg.repository.url).toBe(`git+https://github.com/${ActionRepository}.git`);
  });
});
