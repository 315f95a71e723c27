import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { runCli } from '../src/cli.js';
import { withoutColour } from '../src/core/colour.js';
import type { Report } from '../src/core/report.js';
import { mermaidBlocks, mermaidErrors } from './helpers/mermaid.js';
import { repoRoot, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
let tmp: string;
let urlWithPassword: string;
const secret = 'S3cr3t-pa55';

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pgmv-cli-'));
  // The test server trusts local connections, so any password works: a realistic URL to mask.
  const url = new URL(server.adminUrl);
  url.password = secret;
  urlWithPassword = url.toString();
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: process.env,
    cwd: repoRoot,
  });
  return { code, stdout, stderr };
}

describe('the terminal', () => {
  test('colour when the CLI writes to a terminal, none otherwise; --quiet keeps only the summary', async () => {
    const run = async (colour: boolean, ...args: string[]) => {
      let stdout = '';
      await runCli(['fixtures/sql-golang-ok', ...args], {
        stdout: (t) => (stdout += t),
        stderr: () => {},
        env: process.env,
        cwd: repoRoot,
        colour,
      });
      return stdout;
    };
    const coloured = await run(true);
    expect(coloured).toContain('\x1b[32m✓\x1b[0m 1/3 0001_create_users');
    expect(coloured).toContain('pg-migrate-verify: \x1b[1m\x1b[32mPASSED\x1b[0m:');
    const plain = await run(false);
    expect(plain).not.toContain('\x1b[');
    const untimed = (t: string) => t.replace(/\d+(\.\d+)? ?(ms|s)\b/g, 'T');
    expect(untimed(withoutColour(coloured))).toBe(untimed(plain));
    const quiet = await run(true, '-q');
    expect(quiet.trim().split('\n')).toHaveLength(1);
    expect(quiet).toMatch(/^pg-migrate-verify: .*PASSED/);
  });
});

describe('exit status', () => {
  test('0 when every check passes, on the embedded default with no options', async () => {
    const { code, stdout } = await cli('fixtures/sql-golang-ok');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^✓ 1\/3 0001_create_users {2}up \d+ ms · down/m);
    expect(stdout).toContain('pg-migrate-verify: PASSED: 3 migrations, 0 errors, 0 warnings, PostgreSQL');
  });

  test('1 with failing findings, and the JSON and Markdown reports say why', async () => {
    const json = path.join(tmp, 'report.json');
    const md = path.join(tmp, 'report.md');
    const { code, stdout } = await cli(
      'fixtures/sql-golang-down-fails',
      '--database-url',
      urlWithPassword,
      '--json',
      json,
      '--markdown',
      md,
      '-q',
    );
    expect(code).toBe(1);
    expect(stdout).not.toContain('✓ 1/2');
    expect(stdout).toContain(
      'error  rollback-all  fixtures/sql-golang-down-fails/0002_create_orders.down.sql:3',
    );
    const report = JSON.parse(await readFile(json, 'utf8')) as Report;
    expect(report).toMatchObject({
      version: 1,
      result: 'failed',
      postgres: { provider: 'url', version: server.version },
      sets: [
        {
          name: 'fixtures/sql-golang-down-fails',
          dir: 'fixtures/sql-golang-down-fails',
          format: 'sql',
          migrations: [
            {
              id: '0001_create_customers',
              file: 'fixtures/sql-golang-down-fails/0001_create_customers.up.sql',
              up: { ok: true },
              down: { ok: true },
              reversible: 'yes',
              changes: ['+ table public.customers'],
            },
            { id: '0002_create_orders', up: { ok: true }, down: { ok: false }, reversible: 'no' },
          ],
        },
      ],
      findings: [
        {
          check: 'reversibility',
          severity: 'error',
          set: 'fixtures/sql-golang-down-fails',
          migration: '0002_create_orders',
          file: 'fixtures/sql-golang-down-fails/0002_create_orders.down.sql',
          line: 3,
        },
        {
          check: 'rollback-all',
          severity: 'error',
          set: 'fixtures/sql-golang-down-fails',
          migration: '0002_create_orders',
          file: 'fixtures/sql-golang-down-fails/0002_create_orders.down.sql',
          line: 3,
        },
      ],
    });
    expect(typeof report.timings.total).toBe('number');
    const markdown = await readFile(md, 'utf8');
    expect(markdown).toContain('## pg-migrate-verify: ❌ failed');
    expect(markdown).toContain('| ❌ | `0002_create_orders` |');
    expect(markdown).toContain('`fixtures/sql-golang-down-fails/0002_create_orders.down.sql:3`');
    // The picture of the change, from the snapshots the walk took, drawn by GitHub's Mermaid.
    const diagrams = mermaidBlocks(markdown);
    expect(diagrams).toEqual([
      [
        'erDiagram',
        '  t1["public.customers (added)"] {',
        '    integer id PK',
        '  }',
        '  t2["public.orders (added)"] {',
        '    integer id PK',
        '    integer customer_id FK',
        '  }',
        '  t2 }o--o| t1 : "orders_customer_id_fkey"',
      ].join('\n'),
    ]);
    expect(mermaidErrors(...diagrams)).toEqual([undefined]);
  });

  test.each([
    [['fixtures/nope'], "Input 'migrations-dir' points to 'fixtures/nope', which does not exist."],
    [
      ['fixtures/sql-golang-ok', '--postgres-version', '12'],
      "Input 'postgres-version' is '12'. Allowed values: 14, 15, 16, 17, 18.",
    ],
    [
      ['fixtures/sql-golang-ok', '--only', 'apply,revers'],
      "Input 'only' is 'revers'. Allowed values: apply, reversibility,",
    ],
    [
      ['fixtures/sql-golang-ok', '--step-timeout', 'soon'],
      "Input 'step-timeout' is 'soon'. Expected a duration such as 300 (seconds), 90s, 5m or 1h.",
    ],
    [
      ['fixtures/sql-golang-ok', '--format', 'liquibase'],
      "option '--format <format>' argument 'liquibase' is invalid. Allowed choices are auto, sql,",
    ],
    [['fixtures/sql-golang-ok', '--no-such-flag'], "unknown option '--no-such-flag'"],
  ])('2 when it cannot check: %j', async (args, message) => {
    const { code, stdout, stderr } = await cli(...args);
    expect(code).toBe(2);
    expect(stdout + stderr).toContain(message);
    expect(stdout + stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
  });

  test('--help lists the options and exits 0', async () => {
    const { code, stdout } = await cli('--help');
    expect(code).toBe(0);
    expect(stdout).toContain('Usage: pg-migrate-verify [options] [dir]');
    expect(stdout).toContain('--postgres-version <major>');
  });
});

describe('a password in --database-url is masked everywhere it is printed', () => {
  test('in progress, summary, JSON and Markdown of a failing run, and in connection errors', async () => {
    const json = path.join(tmp, 'masked.json');
    const md = path.join(tmp, 'masked.md');
    const run = await cli(
      'fixtures/sql-golang-up-syntax-error',
      '--database-url',
      urlWithPassword,
      '--json',
      json,
      '--markdown',
      md,
      '-v',
    );
    expect(run.code).toBe(1);
    const all = run.stdout + run.stderr + (await readFile(json, 'utf8')) + (await readFile(md, 'utf8'));
    expect(all).toContain('debug: settings');
    expect(all).toContain(':***@127.0.0.1');
    expect(all).not.toContain(secret);

    const bad = new URL(urlWithPassword);
    bad.port = '1';
    const refused = await cli('fixtures/sql-golang-ok', '--database-url', bad.toString(), '--json', json);
    expect(refused.code).toBe(2);
    expect(refused.stdout).toContain("Could not connect to 'postgresql://postgres:***@127.0.0.1:1/postgres'");
    expect(refused.stdout + refused.stderr + (await readFile(json, 'utf8'))).not.toContain(secret);
  });
});

describe('config file', () => {
  test('unknown keys and bad values name the key and what is allowed', async () => {
    const config = path.join(tmp, 'bad.yml');
    await writeFile(config, 'migrations-dir: fixtures/sql-golang-ok\npostgress: binaries\n');
    const unknown = await cli('--config', config);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toContain("has unknown key 'postgress'. Allowed keys: migrations-dir, format,");
    await writeFile(config, 'sets:\n  - migrations-dir: fixtures/sql-golang-ok\n    formt: sql\n');
    const inSet = await cli('--config', config);
    expect(inSet.stdout).toContain(
      "unknown key 'formt' at 'sets.0'. Allowed keys in a set: migrations-dir, format,",
    );
    await writeFile(config, 'migrations-dir: fixtures/sql-golang-ok\nfail-on: sometimes\n');
    const badValue = await cli('--config', config);
    expect(badValue.stdout).toContain(
      `Config file '${path.relative(repoRoot, config)}': 'fail-on' is "sometimes". Allowed values: error, warning.`,
    );
  });

  test('several sets are verified in one run, each in its own database', async () => {
    const config = path.join(tmp, 'sets.yml');
    await writeFile(
      config,
      `database-url: ${urlWithPassword}\nsets:\n  - name: users\n    migrations-dir: fixtures/sql-golang-ok\n  - name: billing\n    migrations-dir: fixtures/sql-flyway-ok\n`,
    );
    const json = path.join(tmp, 'sets.json');
    const { code } = await cli('--config', config, '--json', json, '-q');
    expect(code).toBe(0);
    const report = JSON.parse(await readFile(json, 'utf8')) as Report;
    expect(report.sets.map((s) => [s.name, s.migrations.length])).toEqual([
      ['users', 3],
      ['billing', 4],
    ]);
  });

  test('a matrix over the sets: `sets --json` lists them, `--set` checks one, an unknown one is named', async () => {
    const config = path.join(tmp, 'matrix.yml');
    await writeFile(
      config,
      `database-url: ${urlWithPassword}\naccept:\n  - id: 0002_x\n    set: users\n    reason: known\nsets:\n  - name: users\n    migrations-dir: fixtures/sql-golang-ok\n  - name: billing\n    migrations-dir: fixtures/sql-flyway-ok\n`,
    );
    const listed = await cli('sets', '--json', '--config', config);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual(['users', 'billing']);
    const lines = await cli('sets', '--config', config);
    expect(lines.stdout).toBe('users\tfixtures/sql-golang-ok\tauto\nbilling\tfixtures/sql-flyway-ok\tauto\n');
    const json = path.join(tmp, 'one-set.json');
    const one = await cli('--config', config, '--set', 'billing', '--json', json, '-q');
    expect(one.code).toBe(0);
    const report = JSON.parse(await readFile(json, 'utf8')) as Report;
    expect(report.sets.map((s) => s.name)).toEqual(['billing']);
    // The entry for the other set is not this job's to call unused.
    expect(report.sets[0]?.notes.join('\n') ?? '').not.toContain('accepts');
    const unknown = await cli('--config', config, '--set', 'payments', '-q');
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toContain(
      `Input 'set' is 'payments', which is not a set of config file '${path.relative(repoRoot, config)}'. Sets: users, billing.`,
    );
    const noFile = await cli('sets', '--config', path.join(tmp, 'missing.yml'));
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain('cannot be read');
  });
});

describe('the Action bundle', () => {
  function runAction(inputs: Record<string, string>) {
    const outputFile = path.join(tmp, `output-${Math.random()}`);
    const summaryFile = path.join(tmp, `summary-${Math.random()}`);
    spawnSync('touch', [outputFile, summaryFile]);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      GITHUB_WORKSPACE: repoRoot,
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      RUNNER_TEMP: tmp,
    };
    for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
    const result = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'index.js')], {
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { ...result, outputFile, summaryFile };
  }

  async function outputsOf(file: string): Promise<Record<string, string>> {
    const text = await readFile(file, 'utf8');
    const outputs: Record<string, string> = {};
    for (const m of text.matchAll(/^(\w+)<<(\S+)\n([\s\S]*?)\n\2$/gm))
      outputs[m[1] as string] = m[3] as string;
    return outputs;
  }

  test('the Action as a deploy gate: INPUT_TARGET-DATABASE-URL sets pending, and the job summary has the gate', async () => {
    const production = await server.createDatabase();
    const client = new pg.Client({ connectionString: production.url });
    await client.connect();
    try {
      for (const id of ['0001_create_users', '0002_add_mood'])
        await client.query(
          await readFile(path.join(repoRoot, 'fixtures', 'sql-golang-ok', `${id}.up.sql`), 'utf8'),
        );
      await client.query(
        'CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (2, false)',
      );
    } finally {
      await client.end();
    }
    const target = new URL(production.url);
    target.password = secret;
    const run = runAction({
      'migrations-dir': 'fixtures/sql-golang-ok',
      'database-url': urlWithPassword,
      'target-database-url': target.toString(),
    });
    expect(run.status).toBe(0);
    expect(await outputsOf(run.outputFile)).toMatchObject({
      result: 'passed',
      pending: '1',
      migrations: '1',
    });
    const summary = await readFile(run.summaryFile, 'utf8');
    expect(summary).toContain('#### Deploy gate: `postgresql://postgres:***@127.0.0.1');
    expect(summary).toContain('History table `public.schema_migrations`: 2 migrations applied, 1 pending.');
    expect(summary).toContain('1. `0010_users_email_lower_idx`: touches `public.users`');
    expect(run.stdout.replaceAll(`::add-mask::${secret}`, '')).not.toContain(secret);
  });

  test('node dist/index.js with INPUT_* behaves as the Action: outputs, job summary, exit status', async () => {
    const passed = runAction({ 'migrations-dir': 'fixtures/sql-dbmate-ok', 'database-url': urlWithPassword });
    expect(passed.status).toBe(0);
    expect(passed.stdout).toContain('✓ 1/3 20240101120000_create_posts  up');
    // The runner masks what ::add-mask:: names; nothing else may print the password.
    expect(passed.stdout.replace(`::add-mask::${secret}`, '')).not.toContain(secret);
    const outputs = await outputsOf(passed.outputFile);
    expect(outputs).toMatchObject({ result: 'passed', findings: '0', migrations: '3' });
    const report = JSON.parse(await readFile(outputs.report as string, 'utf8')) as Report;
    expect(report.result).toBe('passed');
    expect(await readFile(passed.summaryFile, 'utf8')).toContain('## pg-migrate-verify: ✅ passed');

    const failed = runAction({
      'migrations-dir': 'fixtures/sql-golang-leftovers',
      'database-url': urlWithPassword,
    });
    expect(failed.status).toBe(1);
    expect(failed.stdout).toContain('::error::3 findings (3 errors); see the job summary.');
    expect(await outputsOf(failed.outputFile)).toMatchObject({
      result: 'failed',
      findings: '3',
      migrations: '2',
    });

    const broken = runAction({ 'migrations-dir': 'fixtures/sql-golang-ok', 'postgres-version': '9' });
    expect(broken.status).toBe(1);
    expect(broken.stdout).toContain(
      "::error::Could not check: Input 'postgres-version' is '9'. Allowed values: 14, 15, 16, 17, 18.",
    );
    expect(await outputsOf(broken.outputFile)).toMatchObject({ result: 'error' });
  });
});
