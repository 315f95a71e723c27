import { cp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { generateHistory, writeHistory } from '../bench/generate.js';
import type { Finding } from '../src/core/findings.js';
import { renderMarkdown } from '../src/core/markdown.js';
import type { Report } from '../src/core/report.js';
import { type RawInputs, resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { tempDir } from './helpers/git.js';
import { edgesOn, fixture, repoRoot, useTestServer } from './helpers/postgres.js';

// The locks check: what each step does to tables that already hold data, as the database saw it.

const server = useTestServer();
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function check(dir: string, raw: RawInputs = {}, cwd = repoRoot): Promise<Report> {
  return verify(await resolveSettings({ 'migrations-dir': dir, ...raw }, cwd), edgesOn(server));
}

/** A copy of fixtures/locks-sql as `db/` next to a pg-migrate-verify.yml with `config`. */
async function fixtureWithConfig(config: string): Promise<string> {
  const dir = await tempDir('pgmv-lock-config-');
  dirs.push(dir);
  await cp(fixture('locks-sql'), path.join(dir, 'db'), { recursive: true });
  await writeFile(path.join(dir, 'pg-migrate-verify.yml'), config);
  return dir;
}

/** `rule migration direction` for each locks finding. */
const brief = (findings: readonly Finding[]) =>
  findings
    .filter((f) => f.check === 'locks')
    .map((f) => `${f.rule} ${f.migration} ${/\((up|down)\)/.exec(f.message)?.[1]}`);

describe('every rule, in SQL', () => {
  test('each rule where it applies, nothing where it does not (new tables, CONCURRENTLY, a lock_timeout first)', async () => {
    const report = await check('fixtures/locks-sql');
    expect(brief(report.findings)).toEqual([
      'blocking-index 0002_accounts_email_idx up',
      'lock-timeout 0002_accounts_email_idx down',
      'rewrite 0003_accounts_seen_at up',
      'lock-timeout 0003_accounts_seen_at up',
      'rewrite 0004_email_varchar up',
      'validated-constraint 0005_orders_account_fk up',
      'set-not-null 0006_email_not_null up',
    ]);
    expect(report.findings.every((f) => f.severity === 'warning')).toBe(true);
    expect(report.result).toBe('passed');
    const [index, down] = report.findings;
    expect(index?.file).toBe('fixtures/locks-sql/0002_accounts_email_idx.up.sql');
    expect(index?.message).toContain(
      "builds index public.accounts_email_idx on public.accounts without CONCURRENTLY: writes to the table wait for the whole build (SHARE, which blocks writes, held until the end of the step's transaction). Use CREATE INDEX CONCURRENTLY",
    );
    expect(down?.file).toBe('fixtures/locks-sql/0002_accounts_email_idx.down.sql');
    // What was observed, for other tools, and a column in the Markdown.
    const seenAt = report.sets[0]?.migrations.find((m) => m.id === '0003_accounts_seen_at');
    expect(seenAt?.locks?.[0]).toMatchObject({
      direction: 'up',
      table: 'public.accounts',
      mode: 'ACCESS EXCLUSIVE',
      blocks: 'reads and writes',
      rewrite: 'a column default that is not a constant (every row gets its own value)',
    });
    // Without seed data, how long a lock was held on empty tables is not reported.
    expect(seenAt?.locks?.[0]?.heldMs).toBeUndefined();
    expect(renderMarkdown(report)).toContain(
      '| ACCESS EXCLUSIVE public.accounts · rewrite<br>down: ACCESS EXCLUSIVE public.accounts |',
    );
    // The CONCURRENTLY index was traced too, both ways: no lock that blocks reads or writes.
    expect(report.sets[0]?.migrations.find((m) => m.id === '0009_accounts_created_idx')?.locks).toEqual([
      {
        direction: 'up',
        table: 'public.accounts',
        mode: 'SHARE UPDATE EXCLUSIVE',
        blocks: 'schema changes',
      },
      {
        direction: 'down',
        table: 'public.accounts',
        mode: 'SHARE UPDATE EXCLUSIVE',
        blocks: 'schema changes',
      },
    ]);
  });

  test('an allow comment in the file: the findings are listed as accepted, with where they were allowed', async () => {
    const report = await check('fixtures/locks-sql');
    expect(report.accepted?.map((a) => [a.rule, a.migration, a.reason])).toEqual([
      [
        'rewrite',
        '0010_accounts_status_allowed',
        'allowed in fixtures/locks-sql/0010_accounts_status_allowed.up.sql (`-- pg-migrate-verify: allow rewrite`)',
      ],
      [
        'lock-timeout',
        '0010_accounts_status_allowed',
        'allowed in fixtures/locks-sql/0010_accounts_status_allowed.up.sql (`-- pg-migrate-verify: allow lock-timeout`)',
      ],
    ]);
  });

  test('lock-rules in the config file: a rule made an error fails the run, a rule turned off is gone', async () => {
    const dir = await fixtureWithConfig('lock-rules:\n  rewrite: error\n  lock-timeout: off\n');
    const report = await check('db', {}, dir);
    expect(report.result).toBe('failed');
    expect(report.findings.filter((f) => f.rule === 'rewrite').map((f) => f.severity)).toEqual([
      'error',
      'error',
    ]);
    expect(report.findings.some((f) => f.rule === 'lock-timeout')).toBe(false);
    await writeFile(path.join(dir, 'pg-migrate-verify.yml'), 'lock-rules:\n  rewrites: error\n');
    await expect(check('db', {}, dir)).rejects.toThrow(
      "has unknown key 'rewrites' at 'lock-rules'. Allowed keys in 'lock-rules' (the rules of the locks check): rewrite, validated-constraint, set-not-null, blocking-index, lock-timeout.",
    );
  });

  test('with seed data, how long the seeded table stayed locked', async () => {
    const dir = await tempDir('pgmv-lock-seed-');
    dirs.push(dir);
    await writeFile(
      path.join(dir, 'seed.sql'),
      "INSERT INTO accounts (email) SELECT 'a' || g || '@example.com' FROM generate_series(1, 20000) g;\n",
    );
    const report = await check('fixtures/locks-sql', {
      only: 'apply,locks',
      'seed-after': '0001_create_accounts',
      'seed-file': path.join(dir, 'seed.sql'),
    });
    const rewrite = report.findings.find((f) => f.rule === 'rewrite');
    expect(rewrite?.message).toMatch(/With the seed data, public\.accounts stayed locked for \d+ ms\./);
    const seenAt = report.sets[0]?.migrations.find((m) => m.id === '0003_accounts_seen_at');
    expect(seenAt?.locks?.[0]?.heldMs).toEqual(expect.any(Number));
  });
});

describe('the same rules from an ORM: the trace comes from the database, not from parsing SQL', () => {
  test('sequelize migrations: every rule, up and down', async () => {
    const dir = await tempDir('pgmv-lock-sequelize-');
    dirs.push(dir);
    const files: Record<string, string> = {
      '20240101000000-create-accounts.cjs': `module.exports = {
  async up(qi, S) {
    await qi.createTable('accounts', {
      id: { type: S.BIGINT, primaryKey: true, autoIncrement: true },
      email: { type: S.TEXT },
    });
    await qi.createTable('orders', { id: { type: S.BIGINT, primaryKey: true, autoIncrement: true }, account_id: { type: S.BIGINT } });
  },
  async down(qi) {
    await qi.dropTable('orders');
    await qi.dropTable('accounts');
  },
};`,
      '20240102000000-email-index.cjs': `module.exports = {
  up: (qi) => qi.addIndex('accounts', ['email'], { name: 'accounts_email_idx' }),
  down: (qi) => qi.removeIndex('accounts', 'accounts_email_idx'),
};`,
      '20240103000000-seen-at.cjs': `module.exports = {
  up: (qi, S) => qi.addColumn('accounts', 'seen_at', { type: S.DATE, defaultValue: S.literal('clock_timestamp()') }),
  down: (qi) => qi.removeColumn('accounts', 'seen_at'),
};`,
      '20240104000000-orders-fk.cjs': `module.exports = {
  up: (qi) => qi.addConstraint('orders', { fields: ['account_id'], type: 'foreign key', name: 'orders_account_fk', references: { table: 'accounts', field: 'id' } }),
  down: (qi) => qi.removeConstraint('orders', 'orders_account_fk'),
};`,
      '20240105000000-email-not-null.cjs': `// pg-migrate-verify: allow lock-timeout
module.exports = {
  up: (qi, S) => qi.changeColumn('accounts', 'email', { type: S.TEXT, allowNull: false }),
  down: (qi, S) => qi.changeColumn('accounts', 'email', { type: S.TEXT, allowNull: true }),
};`,
    };
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    const report = await check(dir, { format: 'sequelize' }, dir);
    expect(brief(report.findings)).toEqual([
      'blocking-index 20240102000000-email-index up',
      'lock-timeout 20240102000000-email-index down',
      'rewrite 20240103000000-seen-at up',
      'lock-timeout 20240103000000-seen-at up',
      'lock-timeout 20240103000000-seen-at down',
      'validated-constraint 20240104000000-orders-fk up',
      'lock-timeout 20240104000000-orders-fk down',
      'set-not-null 20240105000000-email-not-null up',
    ]);
    // The module's own comment allowed lock-timeout there: accepted, not gone.
    expect(
      report.accepted?.map((a) => `${a.rule} ${a.migration} ${/\((up|down)\)/.exec(a.message)?.[1]}`),
    ).toEqual([
      'lock-timeout 20240105000000-email-not-null up',
      'lock-timeout 20240105000000-email-not-null down',
    ]);
  });

  test('an accept: entry for one rule of one migration, in any format', async () => {
    const dir = await fixtureWithConfig(
      'accept:\n  - id: 0004_email_varchar\n    check: locks\n    rule: rewrite\n    reason: accounts has 40 rows\n',
    );
    const report = await check('db', {}, dir);
    expect(report.findings.some((f) => f.migration === '0004_email_varchar')).toBe(false);
    expect(report.accepted?.find((a) => a.migration === '0004_email_varchar')).toMatchObject({
      rule: 'rewrite',
      reason: 'accounts has 40 rows',
    });
  });
});

describe('in the deploy gate', () => {
  test('a lock finding names the live size of the table on the target', async () => {
    const production = await server.createDatabase();
    const client = new pg.Client({ connectionString: production.url });
    await client.connect();
    try {
      await client.query(`
        CREATE TABLE accounts (id bigserial PRIMARY KEY, email text, created_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE orders (id bigserial PRIMARY KEY, account_id bigint);
        CREATE INDEX accounts_email_idx ON accounts (email);
        INSERT INTO accounts (email) SELECT 'a' || g FROM generate_series(1, 3000) g;
        ANALYZE accounts;
        CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
        INSERT INTO schema_migrations VALUES (2, false);`);
    } finally {
      await client.end();
    }
    const report = await check('fixtures/locks-sql', {
      'target-database-url': production.url,
      only: 'target,apply,locks',
    });
    expect(report.sets[0]?.target?.pending[0]).toBe('0003_accounts_seen_at');
    const rewrite = report.findings.find((f) => f.rule === 'rewrite');
    expect(rewrite?.message).toMatch(/On the target, public\.accounts holds about 3000 rows \(\d+ kB\)\./);
  });
});

describe('on the bench history (new tables that reference existing ones)', () => {
  test('every finding is about a table that existed before its migration, never one it creates', async () => {
    const dir = await tempDir('pgmv-lock-bench-');
    dirs.push(dir);
    await writeHistory(dir, generateHistory(48));
    const report = await check(dir, { only: 'apply,locks' });
    const created = new Map(
      (report.sets[0]?.migrations ?? []).map((m) => [
        m.id,
        new Set(m.changes.filter((c) => c.startsWith('+ table ')).map((c) => c.slice('+ table '.length))),
      ]),
    );
    for (const f of report.findings) {
      const tables = [...f.message.matchAll(/public\.[a-z0-9_]+/g)].map((t) => t[0]);
      for (const table of tables) expect(created.get(f.migration ?? '')?.has(table)).toBe(false);
    }
    // A new table's foreign key to an existing one, and its own indexes, are no finding.
    const creates = (report.sets[0]?.migrations ?? []).filter((m) => m.id.includes('_create_r'));
    expect(creates.length).toBeGreaterThan(0);
    for (const m of creates) expect(report.findings.filter((f) => f.migration === m.id)).toEqual([]);
  });
});
