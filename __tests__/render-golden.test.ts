import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { commentBody } from '../src/core/comment.js';
import type { Finding } from '../src/core/findings.js';
import { renderMarkdown } from '../src/core/markdown.js';
import type { MigrationReport, Report } from '../src/core/report.js';
import { repoRoot } from './helpers/postgres.js';

// Golden files: UPDATE_GOLDEN=1 npm test -- render-golden rewrites them; review the diff before committing.
const golden = (name: string) => path.join(repoRoot, '__tests__', 'golden', `${name}.md`);
const options = {
  fileUrl: (file: string, line?: number) =>
    `https://github.com/acme/shop/blob/0123456789abcdef/${file}${line ? `#L${line}` : ''}`,
};

async function matchesGolden(name: string, text: string): Promise<void> {
  const file = golden(name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.UPDATE_GOLDEN !== '1') throw new Error(`${file} is missing: run with UPDATE_GOLDEN=1`);
    await writeFile(file, text);
  }
  expect(text).toBe(await readFile(file, 'utf8'));
}

const migration = (id: string, extra: Partial<MigrationReport> = {}): MigrationReport => ({
  id,
  file: `db/migrations/${id}.up.sql`,
  up: { ok: true, ms: 4 },
  down: { ok: true, ms: 2 },
  reversible: 'yes',
  changes: [],
  ...extra,
});

const base = (findings: Finding[], migrations: MigrationReport[], extra: Partial<Report> = {}): Report => ({
  version: 1,
  result: findings.some((f) => f.severity === 'error') ? 'failed' : 'passed',
  postgres: { version: '16.4', provider: 'binaries' },
  sets: [
    {
      name: 'db/migrations',
      dir: 'db/migrations',
      scope: 'all',
      format: 'sql',
      formatReason: 'golang-migrate layout (NNNN_name.up.sql / NNNN_name.down.sql)',
      migrations,
      notes: [],
      base: {
        ref: 'main',
        commit: 'fedcba9876543210',
        migrations: 1,
        added: migrations.slice(1).map((m) => m.id),
      },
    },
  ],
  findings,
  timings: { total: 2345 },
  ...extra,
});

const f = (check: Finding['check'], message: string, extra: Partial<Finding> = {}): Finding => ({
  check,
  severity: 'error',
  set: 'db/migrations',
  message,
  ...extra,
});

describe('golden Markdown', () => {
  test('a passing run', async () => {
    const report = base(
      [],
      [
        migration('0001_create_users', {
          changes: ['+ table public.users', '+ index public.users_email_key on public.users'],
        }),
        migration('0002_add_status', { changes: ['~ table public.users', '+ column public.users.status'] }),
      ],
    );
    await matchesGolden('passing', renderMarkdown(report, options));
  });

  test('a run whose migrations change tables: the picture of the change', async () => {
    const report = base(
      [],
      [
        migration('0001_create_users', { changes: ['+ table public.users'] }),
        migration('0002_create_orders', { changes: ['+ table public.orders', '~ table public.users'] }),
      ],
    );
    const set = report.sets[0] as Report['sets'][number];
    set.picture = {
      tables: [
        {
          name: 'public.users',
          change: 'changed',
          columns: [
            { name: 'id', type: 'bigint', key: 'PK' },
            {
              name: 'email',
              type: 'character varying(320)',
              change: 'changed',
              detail: 'type text -> character varying(320)',
            },
            { name: 'nickname', type: 'text', change: 'dropped' },
          ],
        },
        {
          name: 'public.orders',
          change: 'added',
          columns: [
            { name: 'id', type: 'bigint', key: 'PK' },
            { name: 'user_id', type: 'bigint', key: 'FK' },
          ],
        },
        {
          name: 'billing.accounts',
          change: 'context',
          columns: [{ name: 'id', type: 'integer', key: 'PK' }],
        },
      ],
      relations: [
        { from: 'public.orders', to: 'public.users', label: 'orders_user_id_fkey', optional: false },
        { from: 'public.users', to: 'billing.accounts', label: 'users_account_fkey', optional: true },
      ],
      more: 4,
    };
    await matchesGolden('schema-picture', renderMarkdown(report, options));
  });

  test('a run with every kind of finding', async () => {
    const report = base(
      [
        f(
          'apply',
          '`0004_add_index` (up) failed: relation "orderz" does not exist. A deploy of this branch stops here.',
          {
            migration: '0004_add_index',
            file: 'db/migrations/0004_add_index.up.sql',
            line: 3,
            detail: 'ERROR:  relation "orderz" does not exist\nSQLSTATE: 42P01',
          },
        ),
        f(
          'reversibility',
          '`0002_add_mood` (down) does not restore the schema from before its up step: enum public.mood: present after down, absent before up.',
          {
            migration: '0002_add_mood',
            file: 'db/migrations/0002_add_mood.down.sql',
          },
        ),
        f(
          'reversibility',
          '`0003_reorder` (down) restores a column at another position: table public.users: column order differs.',
          {
            severity: 'warning',
            migration: '0003_reorder',
            file: 'db/migrations/0003_reorder.down.sql',
          },
        ),
        f(
          'rollback-all',
          'Rolling back every migration does not return to the empty database: enum public.mood: present after rolling back.',
        ),
        f(
          'assertions',
          'The `0002_add_mood` down assertion fails after `0002_add_mood` is rolled back: the statement at line 1 returned false, not true.',
          {
            migration: '0002_add_mood',
            file: 'db/assertions/0002_add_mood.down.sql',
            line: 1,
          },
        ),
        f(
          'ordering',
          '`0003_reorder` is new on this branch but sorts before `0004_add_index`, already on main (fedcba9) and run by production.',
          {
            migration: '0003_reorder',
            file: 'db/migrations/0003_reorder.up.sql',
          },
        ),
        f(
          'drift-snapshot',
          "The schema after all migrations differs from 'db/schema.snapshot': column public.users.mood: present now, absent in the snapshot.",
        ),
        f(
          'drift-models',
          'The schema the models build differs from the migrations: index public.users_email_idx: present in the models, absent after the migrations.',
        ),
      ],
      [
        migration('0001_create_users', { changes: ['+ table public.users'] }),
        migration('0002_add_mood', {
          reversible: 'no',
          changes: ['+ enum public.mood', '~ table public.users'],
          assertions: [
            {
              file: 'db/assertions/0002_add_mood.down.sql',
              direction: 'down',
              side: 'before',
              passed: true,
              ms: 2,
            },
            {
              file: 'db/assertions/0002_add_mood.down.sql',
              direction: 'down',
              side: 'after',
              passed: false,
              ms: 1,
              reason: 'false',
            },
            {
              file: 'db/assertions/0002_add_mood.down.sql',
              direction: 'down',
              side: 'rolled back',
              passed: false,
              ms: 1,
              reason: 'false',
            },
          ],
        }),
        migration('0003_reorder'),
        migration('0004_add_index', { up: { ok: false, ms: 3 }, down: null, reversible: 'skipped' }),
      ],
      {
        accepted: [
          {
            ...f('ordering', '`0001_create_users` is already on main, and this branch edits it.', {
              migration: '0001_create_users',
              file: 'db/migrations/0001_create_users.up.sql',
              line: 2,
            }),
            reason: 'INC-42: production patched by hand',
          },
        ],
      },
    );
    report.sets[0]?.notes.push(
      'rollback-all stopped at `0004_add_index`: it has no down step (no down file).',
    );
    await matchesGolden('every-finding', renderMarkdown(report, options));
  });

  test('a hostile run: names and messages from the repository cannot break out', async () => {
    const hostile = '0005_`pwn`_<details>_@octocat_<img src=x onerror=alert(1)>|x';
    const report = base(
      [
        f(
          'apply',
          `\`${hostile}\` (up) failed: syntax error at "</details><script>alert(1)</script>" cc @org/team #1 **bold** [link](javascript:alert(1))`,
          {
            migration: hostile,
            file: `db/migrations/${hostile}.up.sql`,
            line: 1,
            detail: '```\n</details>\n<script>alert(1)</script>\n```',
          },
        ),
      ],
      [migration(hostile, { changes: ['+ table public."<b>x</b>"'] })],
    );
    const md = renderMarkdown(report, options);
    // Outside code (where GitHub shows text as it is), no tag and no mention from the repository.
    const prose = md
      .replace(/^( *)(`{3,})[\s\S]*?^\1\2$/gm, '')
      .replace(/(`+)[\s\S]*?\1/g, '')
      .replace(/\]\([^)\s]*\)/g, ']');
    expect(prose).not.toMatch(/<script|<img|<\/details><script/);
    expect(prose).not.toMatch(/@(org|octocat)/);
    expect(md).toContain('&lt;/details&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(md).toContain('@&#8203;org/team');
    await matchesGolden('hostile', md);
    // The comment around it adds only our marker.
    const body = commentBody(report, { set: 'db/migrations', digest: '00ff', result: 'failed' }, options);
    expect(
      body.endsWith('<!-- pg-migrate-verify set="db%2Fmigrations" digest="00ff" result="failed" -->\n'),
    ).toBe(true);
  });
});
