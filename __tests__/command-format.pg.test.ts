import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { makeRepo, tempDir } from './helpers/git.js';
import { edgesOn, fixture, repoRoot, useTestServer, withoutLocks } from './helpers/postgres.js';
import { pythonTest } from './helpers/python.js';

const server = useTestServer();
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const project = fixture('python-runner');

describe('format: command, a home-made Python runner with up(cursor) / down(cursor)', () => {
  pythonTest(
    ['psycopg2'],
    'runs through the same checks, with its unittest pairs through assert-command',
    async () => {
      const lines: string[] = [];
      const settings = await resolveSettings(
        withoutLocks({ 'working-directory': 'fixtures/python-runner' }),
        repoRoot,
      );
      const report = await verify(settings, edgesOn(server, lines));
      expect(report.sets[0]?.format).toBe('command');
      expect(report.sets[0]?.migrations.map((m) => [m.id, m.file, m.reversible])).toEqual([
        ['0001_create_accounts', 'migrations/0001_create_accounts.py', 'yes'],
        ['0002_add_plan', 'migrations/0002_add_plan.py', 'yes'],
        ['0003_add_invoices', 'migrations/0003_add_invoices.py', 'no'],
      ]);
      // The runner's own schema_version table is its history: not an object left behind by rollback-all.
      // The line is the migration's own frame in Python's traceback.
      expect(report.findings.map((f) => `${f.check} ${f.migration} ${f.file}:${f.line}`)).toEqual([
        'reversibility 0003_add_invoices migrations/0003_add_invoices.py:9',
        'rollback-all 0003_add_invoices migrations/0003_add_invoices.py:9',
      ]);
      const [down] = report.findings;
      expect(down?.message).toBe(
        '`0003_add_invoices` (down) failed: `/usr/bin/python3 migrate.py down 0003_add_invoices` exited with 1: psycopg2.errors.UndefinedTable: table "invoice" does not exist. A rollback of this release would fail here. Fix the down step.',
      );
      expect(down?.detail).toContain('cursor.execute("DROP TABLE invoice")');
      const runs = report.sets[0]?.migrations[1]?.assertions ?? [];
      expect(runs.map((r) => `${r.direction} ${r.side} ${r.passed}`)).toEqual([
        'down before true',
        'up before false',
        'down after false',
        'up after true',
        'down rolled back true',
        'up rolled back false',
      ]);
      expect(lines.some((l) => l.includes('0002_add_plan') && l.includes('assertions 6/6'))).toBe(true);
    },
  );

  pythonTest(
    ['psycopg2'],
    "a failing step quotes Python's exception line, not the driver's HINT after it, at the migration's line",
    async () => {
      const dir = await tempDir('pgmv-python-');
      dirs.push(dir);
      await cp(project, dir, { recursive: true });
      await rm(path.join(dir, 'tests'), { recursive: true });
      await writeFile(
        path.join(dir, 'pg-migrate-verify.yml'),
        (await readFile(path.join(project, 'pg-migrate-verify.yml'), 'utf8')).replace(/^assert.*$/gm, ''),
      );
      await writeFile(
        path.join(dir, 'migrations', '0004_report_view.py'),
        'def up(cursor):\n    # Postgres adds a HINT after the message.\n    cursor.execute("CREATE VIEW account_names AS SELECT lower(id) FROM accounts")\n\n\ndef down(cursor):\n    cursor.execute("DROP VIEW account_names")\n',
      );
      const report = await verify(
        await resolveSettings(withoutLocks({ only: 'apply' }), dir),
        edgesOn(server),
      );
      expect(report.findings.map((f) => `${f.check} ${f.file}:${f.line}`)).toEqual([
        'apply migrations/0004_report_view.py:3',
      ]);
      expect(report.findings[0]?.message).toContain(
        'exited with 1: psycopg2.errors.UndefinedFunction: function lower(integer) does not exist.',
      );
      expect(report.findings[0]?.detail).toContain('HINT:');
    },
  );

  pythonTest(
    ['psycopg2'],
    'with a base ref, the runner on the base branch lists the base history',
    async () => {
      const repo = await makeRepo();
      dirs.push(repo.dir);
      await cp(project, repo.dir, { recursive: true });
      await rm(path.join(repo.dir, 'migrations', '0003_add_invoices.py'));
      repo.commit('base');
      repo.git('checkout', '-q', '-b', 'pr');
      await writeFile(
        path.join(repo.dir, 'migrations', '0000_create_settings.py'),
        'def up(cursor):\n    cursor.execute("CREATE TABLE settings (k text PRIMARY KEY)")\n\n\ndef down(cursor):\n    cursor.execute("DROP TABLE settings")\n',
      );
      repo.commit('an early migration');
      const settings = await resolveSettings(
        withoutLocks({ 'base-ref': 'main', only: 'ordering' }),
        repo.dir,
      );
      const report = await verify(settings, edgesOn(server));
      expect(report.sets[0]?.base).toMatchObject({ migrations: 2, added: ['0000_create_settings'] });
      expect(report.findings.map((f) => `${f.check} ${f.migration} ${f.file}`)).toEqual([
        'ordering 0000_create_settings migrations/0000_create_settings.py',
      ]);
    },
  );

  pythonTest(
    ['psycopg2'],
    'serve-command: the same runner stays alive for every step, with the same findings at the same lines',
    async () => {
      const settings = await resolveSettings(
        withoutLocks({
          'working-directory': 'fixtures/python-runner',
          'serve-command': '/usr/bin/python3 migrate.py serve',
        }),
        repoRoot,
      );
      const report = await verify(settings, edgesOn(server));
      expect(report.sets[0]?.migrations.map((m) => m.reversible)).toEqual(['yes', 'yes', 'no']);
      expect(report.findings.map((f) => `${f.check} ${f.migration} ${f.file}:${f.line}`)).toEqual([
        'reversibility 0003_add_invoices migrations/0003_add_invoices.py:9',
        'rollback-all 0003_add_invoices migrations/0003_add_invoices.py:9',
      ]);
      expect(report.findings[0]?.message).toBe(
        '`0003_add_invoices` (down) failed: `/usr/bin/python3 migrate.py serve: down 0003_add_invoices` failed: psycopg2.errors.UndefinedTable: table "invoice" does not exist. A rollback of this release would fail here. Fix the down step.',
      );
      expect(report.findings[0]?.detail).toContain('cursor.execute("DROP TABLE invoice")');
    },
  );

  pythonTest(
    ['psycopg2'],
    'serve-command: steps are sent to one process; one that never says ready leaves the commands to run each step',
    async () => {
      const dir = await tempDir('pgmv-serve-');
      dirs.push(dir);
      await cp(project, dir, { recursive: true });
      await rm(path.join(dir, 'tests'), { recursive: true });
      await rm(path.join(dir, 'migrations', '0003_add_invoices.py'));
      // The runner notes each process that applies a migration.
      const runner = await readFile(path.join(dir, 'migrate.py'), 'utf8');
      await writeFile(
        path.join(dir, 'migrate.py'),
        runner.replace(
          'def run(direction, migration_id, url=None):\n',
          'def run(direction, migration_id, url=None):\n    open(os.path.join(HERE, "pids"), "a").write("%d\\n" % os.getpid())\n',
        ),
      );
      const config = (await readFile(path.join(project, 'pg-migrate-verify.yml'), 'utf8')).replace(
        /^assert.*$/gm,
        '',
      );
      const pids = async () =>
        new Set((await readFile(path.join(dir, 'pids'), 'utf8')).trim().split('\n')).size;
      await writeFile(
        path.join(dir, 'pg-migrate-verify.yml'),
        `${config}\nserve-command: /usr/bin/python3 migrate.py serve\n`,
      );
      const served = await verify(await resolveSettings(withoutLocks({}), dir), edgesOn(server));
      expect(served.findings).toEqual([]);
      expect(await pids()).toBe(1);
      await rm(path.join(dir, 'pids'));
      // A serve command that exits at once: every step runs its own command, as without it.
      await writeFile(
        path.join(dir, 'pg-migrate-verify.yml'),
        `${config}\nserve-command: /usr/bin/python3 -c 'print(1)'\n`,
      );
      const each = await verify(await resolveSettings(withoutLocks({}), dir), edgesOn(server));
      expect(each.findings).toEqual([]);
      // up, down, up again of two migrations (the down steps also rolling both back): a process each.
      expect(await pids()).toBe(6);
    },
  );

  test('a list command that fails is a clear error with its output', async () => {
    const settings = await resolveSettings(
      withoutLocks({
        'working-directory': 'fixtures/python-runner',
        'list-command': '/usr/bin/python3 migrate.py lst',
      }),
      repoRoot,
    );
    const report = await verify(settings, edgesOn(server));
    expect(report.result).toBe('error');
    expect(report.error).toContain("'list-command' (/usr/bin/python3 migrate.py lst) exited with 1: ");
    expect(report.error).toContain('It must print the migration ids, one per line');
  });

  test('command settings without format: command are refused', async () => {
    await expect(
      resolveSettings(withoutLocks({ 'migrations-dir': project, 'up-command': 'x {id}' }), repoRoot),
    ).rejects.toThrow("Input 'up-command' is set, but 'format' is 'auto'. Set format: command");
  });
});
