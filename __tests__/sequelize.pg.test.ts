import { spawnSync } from 'node:child_process';
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import type { Report } from '../src/core/report.js';
import { loadMigrations } from '../src/migrations/index.js';
import { Runner } from '../src/migrations/runner.js';
import type { Migration } from '../src/migrations/types.js';
import type { StartedPostgres } from '../src/postgres/types.js';
import { resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { tempDir } from './helpers/git.js';
import { edgesOn, fixture, repoRoot, settingsFor, startTestServer } from './helpers/postgres.js';

let server: StartedPostgres;
const dirs: string[] = [];
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const project = fixture('sequelize-cli');
const found = (report: Report) => report.findings.map((f) => `${f.check} ${f.migration}`);

describe('sequelize-cli projects', () => {
  test('auto-detected; a down that drops a referenced table first fails, an enum left behind is found', async () => {
    const lines: string[] = [];
    const report = await verify(await settingsFor(path.join(project, 'migrations')), edgesOn(server, lines));
    expect(report.sets[0]?.format).toBe('sequelize');
    expect(report.sets[0]?.formatReason).toContain('auto: 6 of 6 modules take a queryInterface');
    expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual([
      '20240101120000-create-teams',
      '20240102120000-create-members',
      '20240103120000-create-projects-and-tasks',
      '20240104120000-add-status-to-members',
      '20240105120000-add-archived-to-teams',
      '20240106120000-create-audit-log',
    ]);
    expect(found(report)).toEqual([
      'reversibility 20240103120000-create-projects-and-tasks',
      'reversibility 20240104120000-add-status-to-members',
      'rollback-all 20240103120000-create-projects-and-tasks',
    ]);
    const [down, enumLeft] = report.findings;
    expect(down?.message).toBe(
      '`20240103120000-create-projects-and-tasks` (down) failed: cannot drop table projects because other objects depend on it. A rollback of this release would fail here. Fix the down step.',
    );
    expect(down?.file).toBe('fixtures/sequelize-cli/migrations/20240103120000-create-projects-and-tasks.cjs');
    expect(down?.detail).toContain(
      'DETAIL:  constraint tasks_projectId_fkey on table tasks depends on table projects',
    );
    expect(enumLeft?.message).toContain(
      'enum public.enum_members_status: present after down, absent before up',
    );
    // The transaction-using, TypeScript and ESM migrations ran like the others.
    expect(report.sets[0]?.migrations.map((m) => m.reversible)).toEqual([
      'yes',
      'yes',
      'no',
      'no',
      'yes',
      'yes',
    ]);
  });

  test('SequelizeMeta records file names exactly as sequelize-cli does, and is left out of comparisons', async () => {
    const loaded = await loadMigrations(path.join(project, 'migrations'), 'sequelize', repoRoot);
    const db = await server.createDatabase();
    const runner = new Runner(loaded.migrations, {
      databaseUrl: db.url,
      timeoutMs: 60_000,
      cancel: async () => {},
    });
    await runner.open();
    try {
      for (const m of loaded.migrations.slice(0, 2)) expect((await runner.up(m)).ok).toBe(true);
      expect((await runner.down(loaded.migrations[1] as Migration)).ok).toBe(true);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const { rows } = await client.query('SELECT name FROM "SequelizeMeta" ORDER BY name');
      await client.end();
      expect(rows.map((r) => r.name)).toEqual(['20240101120000-create-teams.cjs']);
      expect(loaded.historyTables).toEqual(['public.SequelizeMeta']);
    } finally {
      await runner.close();
      await db.drop();
    }
  });

  test('a project without sequelize installed runs with the copy in the shipped bundle, with env from the config file', async () => {
    // Outside this repository, so no node_modules/sequelize is found above it.
    const dir = await tempDir('pgmv-sequelize-');
    dirs.push(dir);
    await mkdir(path.join(dir, 'migrations'));
    await cp(
      path.join(project, 'migrations', '20240101120000-create-teams.cjs'),
      path.join(dir, 'migrations', '20240101120000-create-teams.cjs'),
    );
    await writeFile(
      path.join(dir, 'migrations', '20240107120000-needs-env.cjs'),
      `module.exports = {
  async up(queryInterface) {
    if (process.env.TEAMS_REGION !== 'eu') throw new Error('TEAMS_REGION is ' + process.env.TEAMS_REGION);
    await queryInterface.sequelize.query('CREATE TABLE regions (code text PRIMARY KEY)');
  },
  async down(queryInterface) {
    await queryInterface.dropTable('regions');
  },
};
`,
    );
    await writeFile(path.join(dir, 'pg-migrate-verify.yml'), 'env:\n  TEAMS_REGION: eu\n');
    const child = spawnSync(
      process.execPath,
      [path.join(repoRoot, 'dist', 'cli', 'index.js'), 'migrations', '--database-url', server.adminUrl],
      { cwd: dir, encoding: 'utf8', timeout: 120_000 },
    );
    expect(child.stderr).toContain('sequelize bundled with this tool');
    expect(child.stdout).toContain('pg-migrate-verify: PASSED: 2 migrations, 0 errors');
    expect(child.status).toBe(0);
    expect(process.env.TEAMS_REGION).toBeUndefined();
  });

  test('a folder that fits two formats is an error naming both', async () => {
    const dir = await tempDir('pgmv-ambiguous-');
    dirs.push(dir);
    await cp(
      path.join(project, 'migrations', '20240101120000-create-teams.cjs'),
      path.join(dir, '20240101120000-create-teams.cjs'),
    );
    await writeFile(path.join(dir, '0001_init.up.sql'), 'CREATE TABLE t ();\n');
    const report = await verify(await resolveSettings({ 'migrations-dir': dir }, dir), edgesOn(server));
    expect(report.result).toBe('error');
    expect(report.error).toBe(
      "'.' could be several formats: sql (1 .sql files, e.g. '0001_init.up.sql'); sequelize (1 of 1 modules take a queryInterface, e.g. '20240101120000-create-teams.cjs'). Set 'format' to the one your project runs, or keep one format per folder.",
    );
  });

  test('a module that does not load is a finding at its file, not a crash', async () => {
    const dir = await tempDir('pgmv-sequelize-broken-');
    dirs.push(dir);
    await writeFile(
      path.join(dir, '20240101120000-broken.cjs'),
      'module.exports = { async up(queryInterface) { await queryInterface.createTable( } };\n',
    );
    const settings = await resolveSettings({ 'migrations-dir': dir, format: 'sequelize' }, dir);
    const report = await verify(settings, edgesOn(server));
    expect(report.result).toBe('failed');
    expect(report.findings[0]).toMatchObject({ check: 'apply', file: '20240101120000-broken.cjs' });
    expect(report.findings[0]?.message).toContain('the module does not load: ');
  });
});

describe('sequelize modules as real projects write them', () => {
  const module = (table: string) =>
    `module.exports = {\n  up: (qi, S) => qi.createTable('${table}', { id: { type: S.INTEGER, primaryKey: true } }),\n  down: (qi) => qi.dropTable('${table}'),\n};\n`;

  test('timestamps of different widths compare as dates; one timestamp twice is a warning that says the order', async () => {
    const dir = await tempDir('pgmv-widths-');
    dirs.push(dir);
    await writeFile(path.join(dir, '20250809051256-create-users.cjs'), module('users'));
    await writeFile(path.join(dir, '20250817-alter-orders.cjs'), module('orders_archive'));
    await writeFile(path.join(dir, '20250817-create-orders.cjs'), module('orders'));
    const report = await verify(
      await resolveSettings({ 'migrations-dir': dir, format: 'sequelize', only: 'apply,ordering' }, dir),
      edgesOn(server),
    );
    expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual([
      '20250809051256-create-users',
      '20250817-alter-orders',
      '20250817-create-orders',
    ]);
    expect(report.findings.map((f) => [f.check, f.severity, f.migration])).toEqual([
      ['ordering', 'warning', '20250817-create-orders'],
    ]);
    expect(report.findings[0]?.message).toContain(
      'so sequelize-cli runs them in file-name order: `20250817-alter-orders` before `20250817-create-orders`.',
    );
  });
});
