import { spawnSync } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, test } from '@jest/globals';
import type { Report } from '../src/core/report.js';
import { baseRefOfEvent } from '../src/github/event.js';
import { makeRepo, tempDir } from './helpers/git.js';
import { repoRoot, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('the base ref of the triggering event', () => {
  test('pull_request: GITHUB_BASE_REF', () => {
    expect(baseRefOfEvent({ GITHUB_BASE_REF: 'release/2.x', GITHUB_EVENT_NAME: 'pull_request' })).toBe(
      'release/2.x',
    );
  });

  test("merge_group: the queue's base branch from the event payload", async () => {
    const dir = await tempDir('pgmv-event-');
    dirs.push(dir);
    const payload = path.join(dir, 'event.json');
    await writeFile(payload, JSON.stringify({ merge_group: { base_ref: 'refs/heads/main' } }));
    expect(baseRefOfEvent({ GITHUB_EVENT_NAME: 'merge_group', GITHUB_EVENT_PATH: payload })).toBe('main');
  });

  test('push: none', () => {
    expect(baseRefOfEvent({ GITHUB_EVENT_NAME: 'push', GITHUB_BASE_REF: '' })).toBeUndefined();
  });
});

test('the Action compares a pull request with its base branch without a base-ref input', async () => {
  const repo = await makeRepo();
  dirs.push(repo.dir);
  await repo.write({
    'db/0001_users.up.sql': 'CREATE TABLE users (id int PRIMARY KEY);\n',
    'db/0001_users.down.sql': 'DROP TABLE users;\n',
    'db/0003_orders.up.sql': 'CREATE TABLE orders (id int PRIMARY KEY);\n',
    'db/0003_orders.down.sql': 'DROP TABLE orders;\n',
  });
  repo.commit('base');
  repo.git('checkout', '-q', '-b', 'feature');
  await repo.write({
    'db/0002_email.up.sql': 'ALTER TABLE users ADD COLUMN email text;\n',
    'db/0002_email.down.sql': 'ALTER TABLE users DROP COLUMN email;\n',
  });
  repo.commit('add 0002');

  const runner = await tempDir('pgmv-runner-');
  dirs.push(runner);
  const output = path.join(runner, 'output');
  const summary = path.join(runner, 'summary.md');
  await writeFile(output, '');
  await writeFile(summary, '');
  // The Action's own entry point, as the runner starts it (inputs arrive as INPUT_* variables).
  const tsx = pathToFileURL(path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;
  const child = spawnSync(process.execPath, ['--import', tsx, path.join(repoRoot, 'src', 'index.ts')], {
    cwd: repo.dir,
    encoding: 'utf8',
    env: {
      ...process.env,
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: repo.dir,
      GITHUB_EVENT_NAME: 'pull_request',
      GITHUB_BASE_REF: 'main',
      GITHUB_OUTPUT: output,
      GITHUB_STEP_SUMMARY: summary,
      RUNNER_TEMP: runner,
      TMPDIR: runner,
      'INPUT_MIGRATIONS-DIR': 'db',
      'INPUT_DATABASE-URL': server.adminUrl,
      'INPUT_BASE-REF': '',
      // This test is about the base branch: the locks check's warnings are another test's business.
      INPUT_SKIP: 'locks',
    },
    timeout: 120_000,
  });
  expect(`${child.status} ${child.stderr}`).toBe('1 ');
  const report = JSON.parse(
    await readFile(path.join(runner, 'pg-migrate-verify', 'report.json'), 'utf8'),
  ) as Report;
  expect(report.sets[0]?.base).toMatchObject({ ref: 'main', added: ['0002_email'] });
  expect(report.findings.map((f) => `${f.check} ${f.file}`)).toEqual(['ordering db/0002_email.up.sql']);
  expect(await readFile(output, 'utf8')).toMatch(/result<<.*\nfailed\n/);
  const markdown = await readFile(summary, 'utf8');
  expect(markdown).toContain('Compared with `main` at `');
  expect(markdown).toContain('this branch adds `0002_email`');
});
