import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import type { Report } from '../src/core/report.js';
import type { RawInputs } from '../src/settings.js';
import { resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { makeRepo, type Repo } from './helpers/git.js';
import { edgesOn, fixture, useTestServer, withoutLocks } from './helpers/postgres.js';
import { type PythonTool, pythonTest } from './helpers/python.js';

/**
 * The one suite every migration format must pass (as golang-migrate has one for its database
 * drivers): a format is done when it applies a history, reports a failing up and a failing down at
 * the migration's file, finds what a down step leaves behind, reports a migration without a down
 * step, keeps its own history table out of the comparison, and catches a migration the branch
 * adds out of order. Each format writes the same migrations in its own shape.
 */

/** One migration of a test history: the SQL of its up step and of its down step (none: no down step). */
interface Spec {
  up: string;
  down?: string;
}

/** How one format writes a history into a project folder, and where it reports each migration. */
interface Writer {
  format: string;
  /** Python tools the format's runner needs. */
  needs: PythonTool[];
  /** Writes migration `n` (1-based) of the history into the project. */
  write(dir: string, n: number, spec: Spec): Promise<void>;
  /** Writes what the project needs once (runner, config); the inputs that point the check at it. */
  setup(dir: string): Promise<RawInputs>;
  /** The files findings name for migration `n`, relative to the project. */
  upFile(n: number): string;
  downFile(n: number): string;
  /** How this format's tool can lack a down step: per migration, or not at all (with why). */
  noDown: 'per migration' | 'whole set' | { never: string };
  /** The framework's history table: never a leftover. */
  historyTable: string;
}

const sqlText = (text: string) => JSON.stringify(text);

const writers: Writer[] = [
  {
    format: 'sql',
    needs: [],
    async write(dir, n, spec) {
      await writeFile(path.join(dir, 'db', `000${n}_m${n}.up.sql`), `${spec.up}\n`);
      if (spec.down !== undefined)
        await writeFile(path.join(dir, 'db', `000${n}_m${n}.down.sql`), `${spec.down}\n`);
    },
    async setup(dir) {
      await mkdir(path.join(dir, 'db'), { recursive: true });
      return { 'migrations-dir': 'db', format: 'sql' };
    },
    upFile: (n) => `db/000${n}_m${n}.up.sql`,
    downFile: (n) => `db/000${n}_m${n}.down.sql`,
    noDown: 'per migration',
    historyTable: '_pg_migrate_verify',
  },
  {
    format: 'sequelize',
    needs: [],
    async write(dir, n, spec) {
      const down =
        spec.down === undefined
          ? ''
          : `\n  down: (queryInterface) => queryInterface.sequelize.query(${sqlText(spec.down)}),`;
      await writeFile(
        path.join(dir, 'db', `2024010${n}000000-m${n}.cjs`),
        `module.exports = {\n  up: (queryInterface) => queryInterface.sequelize.query(${sqlText(spec.up)}),${down}\n};\n`,
      );
    },
    async setup(dir) {
      await mkdir(path.join(dir, 'db'), { recursive: true });
      return { 'migrations-dir': 'db', format: 'sequelize' };
    },
    upFile: (n) => `db/2024010${n}000000-m${n}.cjs`,
    downFile: (n) => `db/2024010${n}000000-m${n}.cjs`,
    noDown: 'per migration',
    historyTable: 'SequelizeMeta',
  },
  {
    format: 'umzug',
    needs: [],
    async write(dir, n, spec) {
      const down =
        spec.down === undefined ? '' : `\n  down: ({ context }) => context.query(${sqlText(spec.down)}),`;
      await writeFile(
        path.join(dir, 'db', `2024.01.0${n}T00.00.00.m${n}.cjs`),
        `module.exports = {\n  up: ({ context }) => context.query(${sqlText(spec.up)}),${down}\n};\n`,
      );
    },
    async setup(dir) {
      await mkdir(path.join(dir, 'db'), { recursive: true });
      return { 'migrations-dir': 'db', format: 'umzug' };
    },
    upFile: (n) => `db/2024.01.0${n}T00.00.00.m${n}.cjs`,
    downFile: (n) => `db/2024.01.0${n}T00.00.00.m${n}.cjs`,
    noDown: 'per migration',
    historyTable: '_pg_migrate_verify',
  },
  {
    format: 'alembic',
    needs: ['psycopg2', 'sqlalchemy', 'alembic'],
    async write(dir, n, spec) {
      // Revision n revises n - 1, unless the test names another parent through `spec.up`'s marker.
      const parent = /-- parent: (\w+)/.exec(spec.up)?.[1] ?? (n > 1 ? `r${n - 1}` : undefined);
      await writeFile(
        path.join(dir, 'migrations', 'versions', `r${n}_m${n}.py`),
        [
          'from alembic import op',
          '',
          `revision = "r${n}"`,
          `down_revision = ${parent ? `"${parent}"` : 'None'}`,
          'branch_labels = None',
          'depends_on = None',
          '',
          '',
          'def upgrade():',
          `    op.execute(${sqlText(spec.up)})`,
          '',
          '',
          'def downgrade():',
          `    op.execute(${sqlText(spec.down ?? 'SELECT 1')})`,
          '',
        ].join('\n'),
      );
    },
    async setup(dir) {
      await mkdir(path.join(dir, 'migrations', 'versions'), { recursive: true });
      const project = fixture('alembic-project');
      await copyFile(path.join(project, 'alembic.ini'), path.join(dir, 'alembic.ini'));
      await copyFile(path.join(project, 'migrations', 'env.py'), path.join(dir, 'migrations', 'env.py'));
      return { 'migrations-dir': '.', format: 'alembic' };
    },
    upFile: (n) => `migrations/versions/r${n}_m${n}.py`,
    downFile: (n) => `migrations/versions/r${n}_m${n}.py`,
    noDown: { never: 'every alembic revision has a downgrade()' },
    historyTable: 'alembic_version',
  },
  {
    format: 'command',
    needs: ['psycopg2'],
    async write(dir, n, spec) {
      await writeFile(
        path.join(dir, 'migrations', `000${n}_m${n}.py`),
        `def up(cursor):\n    cursor.execute(${sqlText(spec.up)})\n\n\ndef down(cursor):\n    cursor.execute(${sqlText(spec.down ?? 'SELECT 1')})\n`,
      );
    },
    async setup(dir) {
      await mkdir(path.join(dir, 'migrations'), { recursive: true });
      await copyFile(path.join(fixture('python-runner'), 'migrate.py'), path.join(dir, 'migrate.py'));
      return {
        format: 'command',
        'list-command': '/usr/bin/python3 migrate.py list',
        'up-command': '/usr/bin/python3 migrate.py up {id}',
        'down-command': '/usr/bin/python3 migrate.py down {id}',
        'history-table': 'schema_version',
      };
    },
    upFile: (n) => `migrations/000${n}_m${n}.py`,
    downFile: (n) => `migrations/000${n}_m${n}.py`,
    noDown: 'whole set',
    historyTable: 'schema_version',
  },
];

const server = useTestServer();
const repos: Repo[] = [];
afterAll(async () => {
  for (const repo of repos) await rm(repo.dir, { recursive: true, force: true });
});

/** A project of `writer`'s format holding `specs`, committed in a git repository. */
async function project(writer: Writer, specs: Spec[]): Promise<{ repo: Repo; inputs: RawInputs }> {
  const repo = await makeRepo();
  repos.push(repo);
  const inputs = await writer.setup(repo.dir);
  for (const [i, spec] of specs.entries()) await writer.write(repo.dir, i + 1, spec);
  repo.commit('history');
  return { repo, inputs };
}

async function check(dir: string, inputs: RawInputs): Promise<Report> {
  return verify(await resolveSettings(withoutLocks(inputs), dir), edgesOn(server));
}

const users: Spec = { up: 'CREATE TABLE users (id int PRIMARY KEY)', down: 'DROP TABLE users' };
const email: Spec = {
  up: 'ALTER TABLE users ADD COLUMN email text',
  down: 'ALTER TABLE users DROP COLUMN email',
};

describe.each(writers)('format $format conforms', (writer) => {
  const conforms = (name: string, fn: () => Promise<void>) => pythonTest(writer.needs, name, fn);

  conforms(
    'a correct history applies, rolls back, applies again; its history table is not a leftover',
    async () => {
      const { repo, inputs } = await project(writer, [users, email]);
      const report = await check(repo.dir, inputs);
      expect(report.sets[0]?.format).toBe(writer.format);
      expect(report.findings).toEqual([]);
      expect(report.result).toBe('passed');
      expect(report.sets[0]?.migrations.map((m) => [m.file, m.reversible])).toEqual([
        [writer.upFile(1), 'yes'],
        [writer.upFile(2), 'yes'],
      ]);
      expect(JSON.stringify(report.sets[0]?.migrations)).not.toContain(writer.historyTable);
    },
  );

  conforms('a failing up step is an apply finding at its file', async () => {
    const { repo, inputs } = await project(writer, [users, { up: 'ALTER TABLE nosuch ADD COLUMN x int' }]);
    const report = await check(repo.dir, inputs);
    expect(report.findings.map((f) => [f.check, f.file])).toEqual([['apply', writer.upFile(2)]]);
    expect(report.findings[0]?.message).toContain('relation "nosuch" does not exist');
  });

  conforms('a failing down step is a reversibility finding at its down file', async () => {
    const { repo, inputs } = await project(writer, [
      users,
      { ...email, down: 'ALTER TABLE users DROP COLUMN mail' },
    ]);
    const report = await check(repo.dir, inputs);
    const down = report.findings.find((f) => f.check === 'reversibility');
    expect(down?.file).toBe(writer.downFile(2));
    expect(down?.message).toContain('column "mail" of relation "users" does not exist');
  });

  conforms('what a down step leaves behind is found, as an object', async () => {
    const index: Spec = { up: 'CREATE INDEX users_email_idx ON users (email)', down: 'SELECT 1' };
    const { repo, inputs } = await project(writer, [users, email, index]);
    const report = await check(repo.dir, inputs);
    const left = report.findings.find((f) => f.check === 'reversibility');
    expect(left?.file).toBe(writer.downFile(3));
    expect(left?.message).toContain(
      'index public.users_email_idx on public.users: present after down, absent before up',
    );
  });

  const noDown = 'a migration without a down step is reported as such, and rollback-all stops there';
  if (typeof writer.noDown === 'object')
    test.skip(`${noDown} [not applicable: ${writer.noDown.never}]`, () => {});
  else
    conforms(noDown, async () => {
      const { repo, inputs } = await project(writer, [users, { up: 'CREATE TABLE logs (id int)' }]);
      const report = await check(
        repo.dir,
        writer.noDown === 'whole set' ? { ...inputs, 'down-command': undefined } : inputs,
      );
      expect(report.findings).toEqual([]);
      expect(report.sets[0]?.migrations[1]?.reversible).toBe('no-down');
      expect(report.sets[0]?.notes.join('\n')).toContain('rollback-all stopped at');
    });

  conforms('a migration the branch adds out of order (or beside a head) is an ordering finding', async () => {
    const logs: Spec = { up: 'CREATE TABLE logs (id int)', down: 'DROP TABLE logs' };
    const { repo, inputs } = await project(writer, [users, email]);
    repo.git('checkout', '-q', '-b', 'feature');
    if (writer.format === 'alembic') {
      // In a graph, "out of order" is a second revision on the same parent: two heads.
      await writer.write(repo.dir, 3, { up: `${logs.up} -- parent: r1`, down: logs.down });
    } else {
      // Migration 0: new on the branch, but it sorts before the base's two.
      await writer.write(repo.dir, 0, logs);
    }
    repo.commit('feature');
    const report = await check(repo.dir, { ...inputs, 'base-ref': 'main', only: 'ordering' });
    expect(report.findings.map((f) => f.check)).toEqual(['ordering']);
    expect(report.findings[0]?.message).toMatch(/sorts before|heads/);
  });
});
