import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { interpreterOf } from '../src/migrations/alembic-server.js';
import { resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { makeRepo, tempDir } from './helpers/git.js';
import { edgesOn, useTestServer } from './helpers/postgres.js';
import { pythonTest } from './helpers/python.js';

const server = useTestServer();
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('the interpreter behind alembic-command', () => {
  test('python -m alembic, a runner (poetry, uv) and a script with a python first line name it; a wrapper does not', async () => {
    const dir = await tempDir('pgmv-interp-');
    dirs.push(dir);
    await mkdir(path.join(dir, 'bin'));
    await writeFile(path.join(dir, 'bin', 'alembic'), '#!/opt/venv/bin/python3\nimport alembic\n');
    await writeFile(path.join(dir, 'migrate.sh'), '#!/bin/sh\nexec alembic "$@"\n');
    const env = { PATH: path.join(dir, 'bin') };
    expect(interpreterOf('python3 -m alembic', env, dir)).toEqual({ command: 'python3', cwdOnPath: true });
    expect(interpreterOf('/opt/venv/bin/python -m alembic', env, dir)).toEqual({
      command: '/opt/venv/bin/python',
      cwdOnPath: true,
    });
    expect(interpreterOf('poetry run alembic', env, dir)).toEqual({
      command: 'poetry run python',
      cwdOnPath: false,
    });
    expect(interpreterOf('alembic', env, dir)).toEqual({
      command: '/opt/venv/bin/python3',
      cwdOnPath: false,
    });
    expect(interpreterOf('bin/alembic', {}, dir)).toEqual({
      command: '/opt/venv/bin/python3',
      cwdOnPath: false,
    });
    expect(interpreterOf('./migrate.sh', env, dir)).toBeUndefined();
    expect(interpreterOf('alembic', { PATH: '/nowhere' }, dir)).toBeUndefined();
  });
});

/** An empty alembic project in a temporary folder, with this env.py. */
async function projectDir(prefix: string, envPy: string): Promise<{ dir: string; versions: string }> {
  const dir = await tempDir(prefix);
  dirs.push(dir);
  const versions = path.join(dir, 'migrations', 'versions');
  await mkdir(versions, { recursive: true });
  await writeFile(path.join(dir, 'alembic.ini'), '[alembic]\nscript_location = %(here)s/migrations\n');
  await writeFile(path.join(dir, 'migrations', 'env.py'), envPy);
  return { dir, versions };
}

/**
 * A linear project whose revisions note the process they run in (PIDS_FILE), with one revision
 * whose downgrade ends its interpreter.
 */
async function pidProject(): Promise<{ dir: string; pids: string }> {
  const { dir, versions } = await projectDir(
    'pgmv-alembic-pids-',
    'import os\nfrom alembic import context\nfrom sqlalchemy import create_engine\nwith create_engine(os.environ["DATABASE_URL"]).connect() as connection:\n    context.configure(connection=connection)\n    with context.begin_transaction():\n        context.run_migrations()\n',
  );
  let parent: string | null = null;
  for (let i = 1; i <= 4; i++) {
    const rev = `${i}`.repeat(12);
    const down = i === 2 ? '    os._exit(3)\n' : `    op.drop_table("t${i}")\n`;
    await writeFile(
      path.join(versions, `${rev}_t${i}.py`),
      `import os\nfrom alembic import op\nimport sqlalchemy as sa\nrevision = "${rev}"\ndown_revision = ${parent ? `"${parent}"` : 'None'}\n\ndef upgrade():\n    with open(os.environ["PIDS_FILE"], "a") as f:\n        f.write("%d %d\\n" % (os.getpid(), op.get_bind().execute(sa.text("SELECT txid_current()")).scalar()))\n    op.create_table("t${i}", sa.Column("id", sa.Integer, primary_key=True))\n\ndef downgrade():\n${down}`,
    );
    parent = rev;
  }
  await chmod(dir, 0o755);
  return { dir, pids: path.join(dir, 'pids') };
}

describe('alembic steps in one interpreter', () => {
  pythonTest(
    ['psycopg2', 'sqlalchemy', 'alembic'],
    "every step runs in the project's interpreter, started once; a step that ends it is that step's failure, and the next starts another",
    async () => {
      const { dir, pids } = await pidProject();
      const run = async (command?: string) => {
        await rm(pids, { force: true });
        const settings = await resolveSettings(
          {
            'migrations-dir': dir,
            format: 'alembic',
            skip: 'locks',
            ...(command ? { 'alembic-command': command } : {}),
          },
          dir,
        );
        // One migration at a time: the broken downgrade ends an interpreter once (in passes, it
        // would end one in the passes and another when the walk goes again one at a time).
        const report = await verify(settings, {
          ...edgesOn(server),
          env: { ...process.env, PIDS_FILE: pids },
          oneAtATime: true,
        });
        const lines = (await readFile(pids, 'utf8')).trim().split('\n');
        return { report, pids: lines.map((l) => l.split(' ')[0]) };
      };
      const one = await run();
      expect(one.report.findings.map((f) => `${f.check} ${f.migration ?? '-'}`)).toEqual([
        'reversibility 222222222222',
        // Rolling everything back stops at the same downgrade.
        'rollback-all 222222222222',
      ]);
      expect(one.report.findings[0]?.message).toContain('`alembic downgrade -1` exited with 3');
      expect(one.report.sets[0]?.migrations.map((m) => m.reversible)).toEqual(['yes', 'no', 'yes', 'yes']);
      // Two interpreters: the first ended by the broken downgrade, the second for everything after.
      expect(new Set(one.pids).size).toBe(2);
      // The same verdict, one process per step, with a command that is not python's (a wrapper).
      const each = await run(
        `${execFileSync('sh', ['-c', 'command -v sh']).toString().trim()} -c 'exec alembic "$@"' alembic`,
      );
      expect(each.report.findings.map((f) => `${f.check} ${f.migration ?? '-'}`)).toEqual(
        one.report.findings.map((f) => `${f.check} ${f.migration ?? '-'}`),
      );
      expect(new Set(each.pids).size).toBe(each.pids.length);
      expect(each.pids.length).toBe(one.pids.length);
    },
  );
});

describe('alembic on a pull request', () => {
  pythonTest(
    ['psycopg2', 'sqlalchemy', 'alembic'],
    "the base branch's revisions go up in one alembic command; one of them failing is found at its own revision",
    async () => {
      const { dir, pids } = await pidProject();
      const repo = await makeRepo(dir);
      repo.git('init', '-q', '-b', 'main');
      await rm(path.join(dir, 'migrations', 'versions', '444444444444_t4.py'));
      const broken = path.join(dir, 'migrations', 'versions', '222222222222_t2.py');
      const good = await readFile(broken, 'utf8');
      // On main, revision 2 is broken: it creates t1 again.
      await writeFile(broken, good.replace('op.create_table("t2"', 'op.create_table("t1"'));
      repo.commit('base');
      repo.git('checkout', '-q', '-b', 'pr');
      await writeFile(
        path.join(dir, 'migrations', 'versions', '444444444444_t4.py'),
        'from alembic import op\nimport sqlalchemy as sa\nrevision = "444444444444"\ndown_revision = "333333333333"\n\ndef upgrade():\n    op.create_table("t4", sa.Column("id", sa.Integer, primary_key=True))\n\ndef downgrade():\n    op.drop_table("t4")\n',
      );
      repo.commit('add 4');
      const settings = await resolveSettings(
        { 'migrations-dir': dir, format: 'alembic', 'base-ref': 'main', skip: 'locks' },
        dir,
      );
      const edges = { ...edgesOn(server), env: { ...process.env, PIDS_FILE: pids } };
      const failing = await verify(settings, edges);
      expect(failing.findings.map((f) => `${f.check} ${f.migration} ${f.file}`)).toEqual([
        'apply 222222222222 migrations/versions/222222222222_t2.py',
      ]);
      expect(failing.findings[0]?.message).toContain('relation "t1" already exists');

      // Fixed on main: the three shared revisions are only applied, the new one is checked.
      repo.git('checkout', '-q', 'main');
      await writeFile(broken, good);
      repo.commit('fix 2');
      repo.git('checkout', '-q', 'pr');
      repo.git('rebase', '-q', 'main');
      await rm(pids, { force: true });
      const passing = await verify(settings, edges);
      expect(passing.findings).toEqual([]);
      // The three shared revisions ran in one transaction: one alembic command.
      const lines = (await readFile(pids, 'utf8')).trim().split('\n');
      expect(new Set(lines.slice(0, 3).map((l) => l.split(' ')[1])).size).toBe(1);
      expect(lines[3]?.split(' ')[1]).not.toBe(lines[0]?.split(' ')[1]);
      expect(passing.sets[0]?.unchecked).toBe(3);
      expect(passing.sets[0]?.migrations.map((m) => `${m.id} ${m.reversible}`)).toEqual(['444444444444 yes']);
    },
  );
});

describe("alembic's connection kept between steps", () => {
  pythonTest(
    ['psycopg2', 'sqlalchemy', 'alembic'],
    "env.py's connection serves the next step, reset as a new session: what a step set (a setting, a temporary table) is gone",
    async () => {
      // The template's env.py: a NullPool engine from the config, connected for each command.
      const { dir, versions } = await projectDir(
        'pgmv-alembic-session-',
        'import os\nfrom alembic import context\nfrom sqlalchemy import engine_from_config, pool\nengine = engine_from_config({"sqlalchemy.url": os.environ["DATABASE_URL"]}, prefix="sqlalchemy.", poolclass=pool.NullPool)\nwith engine.connect() as connection:\n    context.configure(connection=connection)\n    with context.begin_transaction():\n        context.run_migrations()\n',
      );
      // Each step fails when it finds what an earlier step left in its session, and notes its backend.
      const step = (table: string, drop: boolean) =>
        [
          '    bind = op.get_bind()',
          '    if bind.execute(sa.text("SELECT current_setting(\'app.touched\', true)")).scalar() == "yes":',
          '        raise Exception("a setting of an earlier step is still set")',
          '    bind.execute(sa.text("SET app.touched = \'yes\'"))',
          '    bind.execute(sa.text("CREATE TEMP TABLE step_scratch (id int)"))',
          '    with open(os.environ["PIDS_FILE"], "a") as f:',
          '        f.write("%d\\n" % bind.execute(sa.text("SELECT pg_backend_pid()")).scalar())',
          drop
            ? `    op.drop_table("${table}")`
            : `    op.create_table("${table}", sa.Column("id", sa.Integer, primary_key=True))`,
        ].join('\n');
      let parent: string | null = null;
      for (let i = 1; i <= 3; i++) {
        const rev = `${i}`.repeat(12);
        await writeFile(
          path.join(versions, `${rev}_t${i}.py`),
          `import os\nfrom alembic import op\nimport sqlalchemy as sa\nrevision = "${rev}"\ndown_revision = ${parent ? `"${parent}"` : 'None'}\n\ndef upgrade():\n${step(`t${i}`, false)}\n\ndef downgrade():\n${step(`t${i}`, true)}\n`,
        );
        parent = rev;
      }
      await chmod(dir, 0o755);
      const pids = path.join(dir, 'pids');
      const settings = await resolveSettings(
        { 'migrations-dir': dir, format: 'alembic', skip: 'locks', jobs: '1' },
        dir,
      );
      const report = await verify(settings, { ...edgesOn(server), env: { ...process.env, PIDS_FILE: pids } });
      expect(report.findings).toEqual([]);
      expect(report.sets[0]?.migrations.map((m) => m.reversible)).toEqual(['yes', 'yes', 'yes']);
      // 3 x (up, down, up again), the down steps also rolling back (in passes): on one kept
      // connection per database.
      const backends = (await readFile(pids, 'utf8')).trim().split('\n');
      expect(backends).toHaveLength(9);
      expect(new Set(backends).size).toBeLessThan(4);
    },
  );
});
