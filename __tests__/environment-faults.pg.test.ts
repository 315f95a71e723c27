import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import type { Report } from '../src/core/report.js';
import { startBinaries } from '../src/postgres/binaries.js';
import { serverVersion } from '../src/postgres/databases.js';
import type { StartedPostgres } from '../src/postgres/types.js';
import { resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { tempDir } from './helpers/git.js';
import { edgesOn, quietLog, withoutLocks } from './helpers/postgres.js';

// Faults of the environment are "could not check" (exit 2), never findings against a migration.

let server: StartedPostgres;
const dirs: string[] = [];
beforeAll(async () => {
  server = await startBinaries({ log: quietLog });
});
afterAll(async () => {
  await server?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** A golang-migrate folder: a table, then a step that sleeps (or whatever `second` says). */
async function history(second: string): Promise<string> {
  const dir = await tempDir('pgmv-faults-');
  dirs.push(dir);
  await writeFile(path.join(dir, '0001_create_jobs.up.sql'), 'CREATE TABLE jobs (id int PRIMARY KEY);\n');
  await writeFile(path.join(dir, '0001_create_jobs.down.sql'), 'DROP TABLE jobs;\n');
  await writeFile(path.join(dir, '0002_second.up.sql'), second);
  await writeFile(path.join(dir, '0002_second.down.sql'), 'SELECT 1;\n');
  return dir;
}

/** Runs the check on `on`, and does `meanwhile` to the backend that sleeps in the second step. */
async function whileSleeping(
  on: StartedPostgres,
  meanwhile: (backend: number, admin: pg.Client) => Promise<void>,
  { stopsServer = false, second = 'SELECT pg_sleep(60);\n' } = {},
): Promise<Report> {
  const dir = await history(second);
  // stopsServer: verify() owns the server and stops it at the end, as the CLI's does.
  const edges = stopsServer ? { ...edgesOn(on), startPostgres: async () => on } : edgesOn(on);
  const running = verify(await resolveSettings(withoutLocks({ 'migrations-dir': dir }), dir), edges);
  const admin = new pg.Client({ connectionString: on.adminUrl });
  admin.on('error', () => {});
  await admin.connect();
  try {
    let backend: number | undefined;
    for (let i = 0; i < 400 && !backend; i++) {
      const { rows } = await admin.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()",
      );
      backend = rows[0]?.pid;
      if (!backend) await new Promise((r) => setTimeout(r, 50));
    }
    if (!backend) throw new Error('the sleeping step never started');
    await meanwhile(backend, admin);
  } finally {
    await admin.end().catch(() => {});
  }
  return running;
}

describe('a server that dies or restarts under the checks', () => {
  test('PostgreSQL killed during a step: exit 2 naming the steps it was running, with the end of its log; nothing left behind', async () => {
    const own = await startBinaries({ log: quietLog });
    let dataDir = '';
    const report = await whileSleeping(
      own,
      async (_backend, admin) => {
        dataDir =
          (await admin.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]?.d ??
          '';
        const postmaster = Number(
          (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
        );
        process.kill(postmaster, 'SIGKILL');
      },
      { stopsServer: true },
    );
    expect(report.result).toBe('error');
    expect(report.findings).toEqual([]);
    expect(report.error).toMatch(
      /^PostgreSQL exited \(killed by SIGKILL\) during the up steps of `0001_create_jobs` to `0002_second` \(sent to the server together\)\. That is a fault of the server the checks run on, not of the migration, so the run stopped there\. Its log ends with:\n/,
    );
    // The server was stopped and its temp directory removed by verify().
    expect(existsSync(path.dirname(dataDir))).toBe(false);
    await own.stop();
  });

  test('a server process killed (as the out-of-memory killer does): the restart is named, not the migration', async () => {
    // A step that drops something goes to the server alone: the fault names it.
    const report = await whileSleeping(
      server,
      async (backend) => {
        process.kill(backend, 'SIGKILL');
      },
      { second: 'SELECT pg_sleep(60);\nDROP TABLE IF EXISTS nothing_here;\n' },
    );
    expect(report.result).toBe('error');
    expect(report.findings).toEqual([]);
    expect(report.error).toContain(
      'PostgreSQL restarted after one of its processes was killed (by the out-of-memory killer, or by hand), ending every session during `0002_second` (up).',
    );
    expect(report.error).toContain('was terminated by signal 9');
  });

  test('a session ended by someone else while the server stays up', async () => {
    // The previous test's restart must be over: wait until the server takes connections again.
    for (let i = 0; i < 100; i++) {
      if (
        await serverVersion(server.adminUrl).then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const report = await whileSleeping(server, async (backend, admin) => {
      await admin.query('SELECT pg_terminate_backend($1)', [backend]);
    });
    expect(report.result).toBe('error');
    expect(report.findings).toEqual([]);
    expect(report.error).toMatch(
      /^The connection to PostgreSQL was closed during the up steps of `0001_create_jobs` to `0002_second` \(sent to the server together\) \(.+\), though the server is still up: something outside the migration ended the session \(an administrator, a pooler, an idle timeout\)\. Run the check again\.$/,
    );
  });
});

describe('an extension the server does not have', () => {
  test('is a "could not check" that names it and where to get a server with it', async () => {
    const dir = await history('CREATE EXTENSION postgis;\n');
    const report = await verify(
      await resolveSettings(withoutLocks({ 'migrations-dir': dir }), dir),
      edgesOn(server),
    );
    expect(report.result).toBe('error');
    expect(report.findings).toEqual([]);
    expect(report.error).toBe(
      `\`0002_second\` (up) needs the extension "postgis", which PostgreSQL ${server.version} (binaries), where the checks run, does not have. That is not a fault of the migration. Run the check on a server that has it: \`postgres: docker\` with \`postgres-image\` (e.g. \`postgis/postgis:16-3.4\`), or a workflow \`services:\` container with the extension and \`database-url\`.`,
    );
  });
});
