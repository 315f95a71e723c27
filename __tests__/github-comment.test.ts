import { getOctokit } from '@actions/github';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import {
  CommentLimit,
  commentBody,
  markerOf,
  parseMarker,
  reportForSet,
  stableReport,
} from '../src/core/comment.js';
import type { Finding } from '../src/core/findings.js';
import type { Report, Result } from '../src/core/report.js';
import { upsertComment } from '../src/github/sticky-comment.js';
import { GitHubServer } from './helpers/github-server.js';

let github: GitHubServer;
beforeEach(async () => {
  github = new GitHubServer();
  await github.start();
});
afterEach(async () => {
  await github.stop();
});

const pr = { owner: 'acme', repo: 'shop', number: 7 };
const octokit = () => getOctokit('test-token', { baseUrl: github.url });

function report(result: Result, findings: Finding[] = []): Report {
  return {
    version: 1,
    result,
    postgres: { version: '16.4', provider: 'binaries' },
    sets: [
      {
        name: 'db',
        dir: 'db',
        scope: 'all',
        format: 'sql',
        migrations: [
          {
            id: '0001_users',
            file: 'db/0001_users.up.sql',
            up: { ok: true, ms: 3 },
            down: { ok: true, ms: 2 },
            reversible: 'yes',
            changes: ['+ table public.users'],
          },
        ],
        notes: [],
      },
    ],
    findings,
    timings: { total: 1234 },
  };
}

const failure: Finding = {
  check: 'reversibility',
  severity: 'error',
  set: 'db',
  migration: '0001_users',
  file: 'db/0001_users.down.sql',
  line: 1,
  message: '`0001_users` (down) failed: boom.',
};

/** What the Action does for one set: digest of the timing-free rendering, body with marker. */
async function post(r: Report, set = 'db', major?: number) {
  const part = reportForSet(r, set);
  const digest = JSON.stringify(stableReport(part)).length.toString(16).padStart(4, '0') + part.result.length;
  return upsertComment(octokit(), pr, { set, major }, (previous) => ({
    digest,
    body: commentBody(part, { set, major, digest, result: part.result }, { previous, major }),
  }));
}

const writes = () => github.received.filter((r) => r.method === 'POST' || r.method === 'PATCH');

describe('the sticky comment, against a local GitHub', () => {
  test('creates once, leaves an unchanged result alone, updates the same comment when it changes', async () => {
    expect(await post(report('failed', [failure]))).toBe('created');
    expect(github.comments).toHaveLength(1);
    const id = github.comments[0]?.id;
    // Same result, other durations: nothing is written.
    const again = report('failed', [failure]);
    again.timings.total = 9999;
    expect(await post(again)).toBe('unchanged');
    expect(writes()).toHaveLength(1);
    // Fixed: the same comment is edited, and says the previous run failed.
    expect(await post(report('passed'))).toBe('updated');
    expect(github.comments).toHaveLength(1);
    expect(github.comments[0]?.id).toBe(id);
    expect(github.comments[0]?.body).toContain(
      '> ✅ Fixed: the previous run of this check failed; this one passes.',
    );
    expect(parseMarker(github.comments[0]?.body)).toMatchObject({ set: 'db', result: 'passed' });
  });

  test("another user's comment with our marker is left alone", async () => {
    github.add(
      `copied by hand\n${markerOf({ set: 'db', digest: 'ffff', result: 'failed' })}`,
      'someone-else',
    );
    expect(await post(report('passed'))).toBe('created');
    expect(github.comments).toHaveLength(2);
    expect(github.comments[0]?.body).toContain('copied by hand');
    expect(github.received.filter((r) => r.method === 'PATCH')).toEqual([]);
  });

  test('finds its comment among 150 others by paging through all of them', async () => {
    for (let i = 0; i < 140; i++) github.add(`chatter ${i}`, `user${i % 7}`);
    await post(report('failed', [failure]));
    for (let i = 0; i < 10; i++) github.add(`more chatter ${i}`, 'user1');
    github.received.length = 0;
    expect(await post(report('passed'))).toBe('updated');
    expect(github.comments).toHaveLength(151);
    expect(github.received.some((r) => r.method === 'GET' && r.path.includes('page=2'))).toBe(true);
  });

  test('a token that cannot read /user still finds the comments of github-actions[bot]', async () => {
    github.userForbidden = true;
    await post(report('failed', [failure]));
    expect(await post(report('passed'))).toBe('updated');
    expect(github.comments).toHaveLength(1);
  });

  test('a version matrix: one comment per requested major, each updated by its own job only', async () => {
    // A comment of an earlier release (no major in its marker) belongs to runs that ask for none.
    github.add(`old\n${markerOf({ set: 'db', digest: '0000', result: 'failed' })}`, 'github-actions[bot]');
    await Promise.all([post(report('failed', [failure]), 'db', 14), post(report('passed'), 'db', 15)]);
    // Both jobs ran at once: which comment was created first is up to them.
    const byMajor = (major?: number) => github.comments.find((c) => parseMarker(c.body)?.major === major);
    expect(github.comments).toHaveLength(3);
    expect(parseMarker(byMajor(undefined)?.body)?.result).toBe('failed');
    expect(byMajor(14)?.body).toContain('## pg-migrate-verify on PostgreSQL 14: ❌ failed');
    expect(byMajor(15)?.body).toContain('## pg-migrate-verify on PostgreSQL 15: ✅ passed');
    // The 14 job is fixed: only its own comment changes.
    expect(await post(report('passed'), 'db', 14)).toBe('updated');
    expect(parseMarker(byMajor(14)?.body)?.result).toBe('passed');
    expect(parseMarker(byMajor(undefined)?.body)?.result).toBe('failed');
    expect(byMajor(15)?.body).not.toContain('Fixed');
    // A run without postgres-version keeps using the comment without a major.
    expect(await post(report('passed'))).toBe('updated');
    expect(github.comments).toHaveLength(3);
    expect(parseMarker(byMajor(undefined)?.body)?.result).toBe('passed');
  });

  test('one comment per migration set', async () => {
    const two = report('failed', [failure]);
    two.sets.push({ ...(two.sets[0] as Report['sets'][number]), name: 'billing', dir: 'billing' });
    await post(two, 'db');
    await post(two, 'billing');
    expect(github.comments.map((c) => parseMarker(c.body)?.set)).toEqual(['db', 'billing']);
    expect(github.comments[1]?.body).not.toContain('boom');
  });
});

describe('an oversized report', () => {
  test('posted through the API stays within the limit GitHub accepts', async () => {
    const many = Array.from({ length: 2000 }, (_, i) => ({
      ...failure,
      migration: `m${i}`,
      detail: 'y'.repeat(400),
    }));
    expect(await post(report('failed', many))).toBe('created');
    const body = github.comments[0]?.body ?? '';
    expect(body.length).toBeLessThanOrEqual(CommentLimit);
    expect(body).toContain('The full report is too long for a comment');
    expect(parseMarker(body)?.result).toBe('failed');
  });

  test('is shortened to the verdict, the failing findings that fit and a pointer to the job summary', () => {
    const many = Array.from({ length: 3000 }, (_, i) => ({
      ...failure,
      migration: `m${i}`,
      message: `\`m${i}\` (down) failed: ${'x'.repeat(60)}.`,
      detail: 'y'.repeat(500),
    }));
    const body = commentBody(
      report('failed', many),
      { set: 'db', digest: 'abcd', result: 'failed' },
      { summaryUrl: 'https://github.com/acme/shop/actions/runs/42' },
    );
    expect(body.length).toBeLessThanOrEqual(CommentLimit);
    expect(body).toContain('## pg-migrate-verify: ❌ failed');
    expect(body).toContain('1 migration checked · 3000 errors, 0 warnings · failing: reversibility');
    expect(body).toContain(
      'The full report is too long for a comment: see the [job summary](https://github.com/acme/shop/actions/runs/42).',
    );
    expect(body).toMatch(/…and \d+ more failing findings\./);
    expect(parseMarker(body)).toEqual({ set: 'db', digest: 'abcd', result: 'failed' });
  });
});
