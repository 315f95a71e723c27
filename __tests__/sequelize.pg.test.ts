import { spawnSync } from 'node:child_process';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import type { Report } from '../src/core/report.js';
import { loadMigrations } from '../src/migrations/index.js';
import type { Migration } from '../src/migrations/types.js';
import { resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { tempDir } from './helpers/git.js';
import {
  edgesOn,
  fixture,
  openRunner,
  repoRoot,
  settingsFor,
  useTestServer,
  withoutLocks,
} from './helpers/postgres.js';

const server = useTestServer();
const dirs: string[] = [];
afterAll(async () => {
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
    const runner = await openRunner(db.url);
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
    // Modules that load sequelize themselves, at load time, from a project with no node_modules.
    await writeFile(
      path.join(dir, 'migrations', '20240108120000-require-sequelize.cjs'),
      `const { DataTypes } = require('sequelize');
const columns = { code: { type: DataTypes.STRING(8), primaryKey: true } };
module.exports = {
  up: (queryInterface) => queryInterface.createTable('currencies', columns),
  down: (queryInterface) => queryInterface.dropTable('currencies'),
};
`,
    );
    await writeFile(
      path.join(dir, 'migrations', '20240109120000-import-sequelize.mjs'),
      `import Sequelize, { DataTypes } from 'sequelize';
export async function up(queryInterface) {
  if (typeof Sequelize !== 'function') throw new Error('no default export');
  await queryInterface.addColumn('currencies', 'symbol', { type: DataTypes.TEXT });
}
export async function down(queryInterface) {
  await queryInterface.removeColumn('currencies', 'symbol');
}
`,
    );
    await writeFile(path.join(dir, 'pg-migrate-verify.yml'), 'env:\n  TEAMS_REGION: eu\n');
    const cli = () =>
      spawnSync(
        process.execPath,
        [path.join(repoRoot, 'dist', 'cli', 'index.js'), 'migrations', '--database-url', server.adminUrl],
        { cwd: dir, encoding: 'utf8', timeout: 120_000 },
      );
    const child = cli();
    expect(child.stderr).toContain('sequelize bundled with this tool');
    expect(child.stdout).toContain('pg-migrate-verify: PASSED: 4 migrations, 0 errors');
    expect(child.status).toBe(0);
    expect(process.env.TEAMS_REGION).toBeUndefined();

    // A promise the step does not await fails after it returned: a finding, not a crash of the tool.
    await writeFile(
      path.join(dir, 'migrations', '20240110120000-forgets-await.cjs'),
      `module.exports = {
  async up(queryInterface) {
    queryInterface.sequelize.query('SELECT * FROM no_such_table');
  },
  async down() {},
};
`,
    );
    // A package the project has not installed: the fix is to install it.
    await writeFile(
      path.join(dir, 'migrations', '20240111120000-needs-lodash.cjs'),
      `const _ = require('lodash');\nmodule.exports = { up: async () => {}, down: async () => {} };\n`,
    );
    const failing = cli();
    expect(failing.status).toBe(1);
    expect(failing.stdout).not.toContain('    at ');
    expect(failing.stdout).toContain(
      '`20240110120000-forgets-await` (up) returned before its queries finished (a missing await?)',
    );
    expect(failing.stdout).toContain(
      '`20240110120000-forgets-await` (up) started work it did not await, and that work failed: relation "no_such_table" does not exist.',
    );
    expect(failing.stdout).toContain("the module does not load: Cannot find module 'lodash'");
    // A module that did not load ran nothing: the database is not in doubt, rollback-all still runs.
    expect(failing.stdout).not.toContain('rollback-all was not run');
    expect(failing.stdout).toContain(
      "Install the project's dependencies first (`npm install` in 'migrations'), so that 'lodash' resolves from the migrations folder",
    );
  });

  test('a folder that fits two formats is an error naming both', async () => {
    const dir = await tempDir('pgmv-ambiguous-');
    dirs.push(dir);
    await cp(
      path.join(project, 'migrations', '20240101120000-create-teams.cjs'),
      path.join(dir, '20240101120000-create-teams.cjs'),
    );
    await writeFile(path.join(dir, '0001_init.up.sql'), 'CREATE TABLE t ();\n');
    const report = await verify(
      await resolveSettings(withoutLocks({ 'migrations-dir': dir }), dir),
      edgesOn(server),
    );
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
    const settings = await resolveSettings(withoutLocks({ 'migrations-dir': dir, format: 'sequelize' }), dir);
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
      await resolveSettings(
        withoutLocks({ 'migrations-dir': dir, format: 'sequelize', only: 'apply,ordering' }),
        dir,
      ),
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

  const sequelizeSet = async (files: Record<string, string>, raw: Record<string, string> = {}) => {
    const dir = await tempDir('pgmv-sequelize-real-');
    dirs.push(dir);
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    return verify(
      await resolveSettings(withoutLocks({ 'migrations-dir': dir, ...raw }), dir),
      edgesOn(server),
    );
  };

  test('modules whose parameters have other names are recognised by what they export', async () => {
    const report = await sequelizeSet({
      '20240101000000-a.cjs': module('alpha'),
      '20240102000000-b.js': `'use strict';\nmodule.exports = {\n  async up(qi, DataTypes) {\n    await qi.addColumn('alpha', 'note', { type: DataTypes.TEXT });\n  },\n  async down(qi) {\n    await qi.removeColumn('alpha', 'note');\n  },\n};\n`,
    });
    expect(report.sets[0]?.format).toBe('sequelize');
    expect(report.sets[0]?.formatReason).toContain('auto: 2 of 2 modules take a queryInterface');
    expect(report.result).toBe('passed');

    const nothing = await sequelizeSet({ 'helpers.cjs': 'module.exports = { twice: (x) => 2 * x };\n' });
    expect(nothing.result).toBe('error');
    expect(nothing.error).toContain("which holds no migrations: it holds 1 .cjs files, e.g. 'helpers.cjs'");
    expect(nothing.error).toContain("set 'format'");
  });

  test('up and down are called as methods of the module, as sequelize-cli calls them', async () => {
    // What sequelize-auto-migrations generates: the steps call a helper of the module through `this`.
    const report = await sequelizeSet(
      {
        '20240101000000-generated.cjs': `const commands = (S) => [
  { fn: 'createTable', params: ['gadgets', { id: { type: S.INTEGER, primaryKey: true } }, {}] },
  { fn: 'addIndex', params: ['gadgets', ['id'], { name: 'gadgets_id_idx' }] },
];
module.exports = {
  pos: 0,
  up(queryInterface, Sequelize) {
    return this.execute(queryInterface, Sequelize, commands(Sequelize));
  },
  down(queryInterface) {
    return queryInterface.dropTable('gadgets');
  },
  async execute(queryInterface, Sequelize, list) {
    for (const command of list.slice(this.pos)) await queryInterface[command.fn](...command.params);
  },
};
`,
      },
      { format: 'sequelize' },
    );
    expect(report.findings).toEqual([]);
    expect(report.sets[0]?.migrations[0]?.reversible).toBe('yes');
  });

  test('work a step starts without awaiting it is waited for and reported, not mistaken for a broken down', async () => {
    const report = await sequelizeSet(
      {
        '20240101000000-create-gadgets.cjs': `module.exports = {
  up: (qi, S) => qi.createTable('gadgets', { id: { type: S.INTEGER, primaryKey: true } }),
  down(qi) {
    // No return: the transaction runs on after down() has returned.
    qi.sequelize.transaction(async (transaction) => {
      await qi.sequelize.query('SELECT pg_sleep(0.3)', { transaction });
      await qi.dropTable('gadgets', { transaction });
    });
  },
};
`,
      },
      { format: 'sequelize' },
    );
    expect(report.findings.map((f) => [f.check, f.message])).toEqual([
      [
        'reversibility',
        '`20240101000000-create-gadgets` (down) returned before its queries finished (a missing await?). The migration tool records the step as done when its function returns, and may exit with the queries cut off, leaving the database half-migrated. The check waited for them before going on. Return or await every promise the step starts (e.g. `return queryInterface.sequelize.transaction(...)`).',
      ],
    ]);
    // Once waited for, the down did what it meant to: no schema difference, and up again worked.
    expect(report.sets[0]?.migrations[0]?.reversible).toBe('yes');
  });

  test('work a step did not await that outlasts the step timeout: the step timed out (shipped CLI)', async () => {
    // The cancelled query rejects with nobody awaiting it: only a real process shows what happens then.
    const dir = await tempDir('pgmv-hangs-');
    dirs.push(dir);
    await writeFile(
      path.join(dir, '20240101000000-hangs.cjs'),
      `module.exports = {
  async up(qi) {
    qi.sequelize.query('SELECT pg_sleep(30)');
  },
  async down() {},
};
`,
    );
    const child = spawnSync(
      process.execPath,
      [
        path.join(repoRoot, 'dist', 'cli', 'index.js'),
        '.',
        '--format',
        'sequelize',
        '--step-timeout',
        '1s',
        '--database-url',
        server.adminUrl,
        '--json',
        'report.json',
      ],
      { cwd: dir, encoding: 'utf8', timeout: 60_000 },
    );
    // On a failure the output shows why it exited as it did.
    expect(`exit ${child.status}: ${child.stderr}`).toMatch(/^exit 1: /);
    const report = JSON.parse(await readFile(path.join(dir, 'report.json'), 'utf8')) as Report;
    expect(report.findings.map((f) => [f.check, f.message.split('.')[0]])).toEqual([
      ['apply', '`20240101000000-hangs` (up) returned before its queries finished (a missing await?)'],
      [
        'apply',
        '`20240101000000-hangs` (up) did not finish within the step timeout of 1 s and was cancelled',
      ],
    ]);
    expect(report.sets[0]?.migrations[0]?.up?.ok).toBe(false);
  });

  test('a down step that drops SequelizeMeta says what sequelize-cli will do', async () => {
    const report = await sequelizeSet(
      {
        '20240101000000-initial.cjs': `module.exports = {
  up: (qi, S) => qi.createTable('accounts', { id: { type: S.INTEGER, primaryKey: true } }),
  down: (qi) => qi.dropAllTables(),
};
`,
        '20240102000000-second.cjs': `module.exports = {
  up: (qi, S) => qi.createTable('ledgers', { id: { type: S.INTEGER, primaryKey: true } }),
  down: (qi) => qi.dropAllTables(),
};
`,
      },
      { format: 'sequelize', only: 'apply,reversibility' },
    );
    expect(report.sets[0]?.notes).toContain(
      "`20240101000000-initial` (down) dropped SequelizeMeta, sequelize-cli's history table (`queryInterface.dropAllTables()` drops it with every other table in public). sequelize-cli's storage creates it again, empty, when it records this rollback; no other migration was recorded there, so nothing is forgotten.",
    );
    expect(report.findings.map((f) => f.message)).toEqual([
      "`20240102000000-second` (down) dropped SequelizeMeta, sequelize-cli's history table (`queryInterface.dropAllTables()` drops it with every other table in public). sequelize-cli's storage creates it again, empty, when it records this rollback, and so forgets that an earlier migration ran (`20240101000000-initial.cjs`): the next `db:migrate` runs it again. Drop only what this migration created.",
      expect.stringContaining(
        '`20240102000000-second` (down) does not restore the schema from before its up step: table public.accounts',
      ),
    ]);
    expect(report.findings.some((f) => f.message.includes('does not exist'))).toBe(false);
  });
});
