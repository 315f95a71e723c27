import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { parseMarker } from '../src/core/comment.js';
import { tempDir } from './helpers/git.js';
import { GitHubServer } from './helpers/github-server.js';
import { repoRoot, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
let github: GitHubServer;
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  github = new GitHubServer();
  await github.start();
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
  inputs: NodeJS.ProcessEnv = {},
): Promise<{ status: number | null; stdout: string; summary: string }> {
  // Each job of a matrix has its own runner directory.
  const job = await tempDir('pgmv-job-');
  dirs.push(job);
  const eventFile = path.join(job, 'event.json');
  await writeFile(
    eventFile,
    JSON.stringify(
      event === 'pull_request'
        ? { pull_request: { number: 7, head: { sha: 'abc123' }, base: { ref: 'main' } } }
        : { ref: 'refs/heads/release' },
    ),
  );
  const summary = path.join(job, 'summary.md');
  await writeFile(summary, '');
  await writeFile(path.join(job, 'output'), '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: job,
    GITHUB_ACTIONS: 'true',
    GITHUB_EVENT_NAME: event,
    GITHUB_EVENT_PATH: eventFile,
    GITHUB_REPOSITORY: 'acme/shop',
    GITHUB_SHA: 'abc123',
    GITHUB_RUN_ID: '42',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: github.url,
    GITHUB_WORKSPACE: repoRoot,
    GITHUB_OUTPUT: path.join(job, 'output'),
    GITHUB_STEP_SUMMARY: summary,
    RUNNER_TEMP: job,
    'INPUT_MIGRATIONS-DIR': `fixtures/${fixture}`,
    'INPUT_DATABASE-URL': server.adminUrl,
    'INPUT_GITHUB-TOKEN': 'ghs_test',
    INPUT_COMMENT: 'true',
    ...inputs,
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

  test('a Postgres version matrix: two jobs at once, each verdict in its own comment', async () => {
    // Real servers of both majors (binaries), as two jobs of `strategy.matrix.postgres` would start.
    const job = (major: string) =>
      action('sql-postgres17-syntax', 'pull_request', {
        'INPUT_DATABASE-URL': '',
        INPUT_POSTGRES: 'binaries',
        'INPUT_POSTGRES-VERSION': major,
      });
    const [old, current] = await Promise.all([job('15'), job('17')]);
    expect(old.status).toBe(1);
    expect(current.status).toBe(0);
    const verdicts = github.comments
      .map((c) => [parseMarker(c.body)?.major, parseMarker(c.body)?.result, c.body.split('\n')[0]])
      .sort();
    expect(verdicts).toEqual([
      [15, 'failed', '## pg-migrate-verify on PostgreSQL 15: ❌ failed'],
      [17, 'passed', '## pg-migrate-verify on PostgreSQL 17: ✅ passed'],
    ]);
    expect(old.stdout).toContain(
      'Pull request comment for fixtures/sql-postgres17-syntax on PostgreSQL 15: created.',
    );
    // Run again: each job finds its own comment and leaves it as it is.
    const [again] = await Promise.all([job('15'), job('17')]);
    expect(again.stdout).toContain('on PostgreSQL 15: unchanged.');
    expect(github.comments).toHaveLength(2);
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
