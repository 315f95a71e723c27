import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { parseMarker } from '../src/core/comment.js';
import type { StartedPostgres } from '../src/postgres/types.js';
import { tempDir } from './helpers/git.js';
import { GitHubServer } from './helpers/github-server.js';
import { repoRoot, startTestServer } from './helpers/postgres.js';

let server: StartedPostgres;
let github: GitHubServer;
let runner: string;
const dirs: string[] = [];

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  github = new GitHubServer();
  await github.start();
  runner = await tempDir('pgmv-runner-');
  dirs.push(runner);
});
afterEach(async () => {
  await github.stop();
});

/**
 * The shipped Action (dist/index.js) as the runner starts it: an event file, GITHUB_* and INPUT_*
 * variables, the API pointed at the local server. Async, so the local server can answer meanwhile.
 */
async function action(
  fixture: string,
  event: 'pull_request' | 'push',
): Promise<{ status: number | null; stdout: string; summary: string }> {
  const eventFile = path.join(runner, 'event.json');
  await writeFile(
    eventFile,
    JSON.stringify(
      event === 'pull_request'
        ? { pull_request: { number: 7, head: { sha: 'abc123' }, base: { ref: 'main' } } }
        : { ref: 'refs/heads/release' },
    ),
  );
  const summary = path.join(runner, 'summary.md');
  await writeFile(summary, '');
  await writeFile(path.join(runner, 'output'), '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: runner,
    GITHUB_ACTIONS: 'true',
    GITHUB_EVENT_NAME: event,
    GITHUB_EVENT_PATH: eventFile,
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_SHA: 'abc123',
    GITHUB_RUN_ID: '42',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: github.url,
    GITHUB_WORKSPACE: repoRoot,
    GITHUB_OUTPUT: path.join(runner, 'output'),
    GITHUB_STEP_SUMMARY: summary,
    RUNNER_TEMP: runner,
    'INPUT_MIGRATIONS-DIR': `fixtures/${fixture}`,
    'INPUT_DATABASE-URL': server.adminUrl,
    'INPUT_GITHUB-TOKEN': 'ghs_test',
    INPUT_COMMENT: 'true',
  };
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'index.js')], { env, cwd: repoRoot });
  let stdout = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stdout += b.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { status, stdout, summary: await readFile(summary, 'utf8') };
}

const writes = () => github.received.filter((r) => r.method === 'POST' || r.method === 'PATCH');

describe('the Action on GitHub (dist/index.js against a local API)', () => {
  test('a failing pull request: one comment with the report and links to the head commit; a rerun writes nothing', async () => {
    const first = await action('sql-golang-leftovers', 'pull_request');
    expect(first.status).toBe(1);
    expect(github.comments).toHaveLength(1);
    const body = github.comments[0]?.body ?? '';
    expect(body).toContain('## pg-migrate-verify: ❌ failed');
    expect(body).toContain(
      '(https://github.com/acme/shop/blob/abc123/fixtures/sql-golang-leftovers/0001_create_tickets.down.sql)',
    );
    expect(parseMarker(body)).toMatchObject({ set: 'fixtures/sql-golang-leftovers', result: 'failed' });
    expect(first.stdout).toContain('Pull request comment for fixtures/sql-golang-leftovers: created.');
    // Annotations on the files, as workflow commands.
    expect(first.stdout).toMatch(
      /::error title=pg-migrate-verify reversibility%3A 0001_create_tickets,file=fixtures\/sql-golang-leftovers\/0001_create_tickets.down.sql::/,
    );
    expect(first.summary).toContain('## pg-migrate-verify: ❌ failed');

    const second = await action('sql-golang-leftovers', 'pull_request');
    expect(second.status).toBe(1);
    expect(second.stdout).toContain('Pull request comment for fixtures/sql-golang-leftovers: unchanged.');
    expect(writes()).toHaveLength(1);
  });

  test('a token that may not write: a warning naming the permission, and the exit status of the findings', async () => {
    github.writesForbidden = true;
    const run = await action('sql-golang-ok', 'pull_request');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(
      '::warning::Could not comment on pull request #7: the token may not write to it',
    );
    expect(run.stdout).toContain('permissions: pull-requests: write');
    expect(github.comments).toHaveLength(0);
  });

  test('a push (a release branch): no comment, the job summary only', async () => {
    const run = await action('sql-golang-ok', 'push');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('Not a pull request: no comment');
    expect(github.received).toEqual([]);
    expect(run.summary).toContain('## pg-migrate-verify: ✅ passed');
  });
});
