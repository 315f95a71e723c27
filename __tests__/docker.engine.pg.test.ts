import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, expect, test } from '@jest/globals';
import type { Report } from '../src/core/report.js';
import { TestcontainersPackage, TestcontainersVersion } from '../src/postgres/docker.js';
import { type Engine, engineDescribe, PlainImage, PostgisImage, toolContainers } from './helpers/engine.js';
import { tempDir } from './helpers/git.js';
import { fixture, repoRoot } from './helpers/postgres.js';

/**
 * The docker provider end to end: the shipped CLI and Action (dist/) under a Node that runs
 * testcontainers 12, against a real engine (Podman's Docker-compatible service) and images built on
 * the machine from Debian's packages (scripts/engine). Nothing here pulls from outside 127.0.0.1.
 */

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function temp(prefix: string): Promise<string> {
  const dir = await tempDir(prefix);
  dirs.push(dir);
  return dir;
}

interface Ran {
  status: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/**
 * Runs `node script args` with the engine's Node; `onOutput` sees the output as it comes (and may
 * signal the child).
 */
function runNode(
  engine: Engine,
  script: string,
  args: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    onOutput?: (all: string, child: ReturnType<typeof spawn>) => void;
  } = {},
): Promise<Ran> {
  const child = spawn(engine.node, [script, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
  });
  let output = '';
  const take = (b: Buffer) => {
    output += b.toString();
    options.onOutput?.(output, child);
  };
  child.stdout.on('data', take);
  child.stderr.on('data', take);
  return new Promise((resolve) => child.on('close', (status, signal) => resolve({ status, signal, output })));
}

const cli = path.join(repoRoot, 'dist', 'cli', 'index.js');

async function verifyWith(
  engine: Engine,
  dir: string,
  args: string[],
  options: Parameters<typeof runNode>[3] = {},
) {
  const out = await temp('pgmv-docker-');
  const json = path.join(out, 'report.json');
  const ran = await runNode(engine, cli, [dir, '--json', json, ...args], options);
  const report = existsSync(json) ? (JSON.parse(await readFile(json, 'utf8')) as Report) : undefined;
  return { ...ran, report };
}

/** A migrations folder that needs PostGIS: the extension, a geometry column and a GiST index. */
async function postgisHistory(): Promise<string> {
  const dir = await temp('pgmv-postgis-');
  await writeFile(path.join(dir, '0001_postgis.up.sql'), 'CREATE EXTENSION postgis;\n');
  await writeFile(path.join(dir, '0001_postgis.down.sql'), 'DROP EXTENSION postgis;\n');
  await writeFile(
    path.join(dir, '0002_places.up.sql'),
    'CREATE TABLE places (id bigint PRIMARY KEY, name text NOT NULL, location geography(Point, 4326) NOT NULL);\nCREATE INDEX places_location_idx ON places USING gist (location);\n',
  );
  await writeFile(path.join(dir, '0002_places.down.sql'), 'DROP TABLE places;\n');
  return dir;
}

engineDescribe('the docker provider on a real container engine', (engine) => {
  const docker = (image: string) => ['--postgres', 'docker', '--postgres-image', image];

  test("a passing history: passed on the image's server, and no container is left", async () => {
    const run = await verifyWith(engine, fixture('sql-golang-ok'), docker(PlainImage));
    expect(`${run.status} ${run.report?.result}`).toBe('0 passed');
    expect(run.report?.postgres).toMatchObject({
      provider: 'docker',
      version: expect.stringMatching(/^15\./),
    });
    expect(run.output).toContain(`Starting container ${PlainImage}`);
    expect(await toolContainers(engine.socket)).toEqual([]);
  }, 180_000);

  test('a failing history: the same findings, at the same file and line, as on the binaries; no container left', async () => {
    const dir = fixture('sql-reversibility-defects');
    const onDocker = await verifyWith(engine, dir, docker(PlainImage));
    const onBinaries = await verifyWith(engine, dir, ['--postgres', 'binaries', '--postgres-version', '15']);
    expect(onDocker.status).toBe(1);
    expect(onBinaries.status).toBe(1);
    const findings = (r: Report | undefined) =>
      (r?.findings ?? []).map((f) => `${f.severity} ${f.check} ${f.file}:${f.line ?? '-'} ${f.message}`);
    expect(findings(onDocker.report).length).toBeGreaterThan(5);
    expect(findings(onDocker.report)).toEqual(findings(onBinaries.report));
    expect(findings(onDocker.report).some((f) => /\.sql:\d+ /.test(f))).toBe(true);
    expect(await toolContainers(engine.socket)).toEqual([]);
  }, 240_000);

  test('an extension only the image has: PostGIS passes on postgres-image, and is "could not check" where it is missing', async () => {
    const dir = await postgisHistory();
    const withPostgis = await verifyWith(engine, dir, docker(PostgisImage));
    expect(`${withPostgis.status} ${withPostgis.report?.result}`).toBe('0 passed');
    expect(withPostgis.report?.sets[0]?.migrations.map((m) => m.reversible)).toEqual(['yes', 'yes']);
    // The image is honoured: the plain one has no PostGIS, nor have the binaries.
    const plain = await verifyWith(engine, dir, docker(PlainImage));
    expect(plain.status).toBe(2);
    expect(plain.output).toMatch(
      /`0001_postgis` \(up\) needs the extension "postgis", which PostgreSQL 15\.\S+ \(docker\)/,
    );
    const binaries = await verifyWith(engine, dir, ['--postgres', 'binaries']);
    expect(binaries.status).toBe(2);
    expect(binaries.output).toMatch(/needs the extension "postgis", which PostgreSQL \S+ \(binaries\)/);
    expect(await toolContainers(engine.socket)).toEqual([]);
  }, 300_000);

  test('SIGTERM while a migration runs, and while the container starts: the run ends and no container is left', async () => {
    const dir = await temp('pgmv-slow-');
    await writeFile(path.join(dir, '0001_slow.up.sql'), 'CREATE TABLE t (id int);\nSELECT pg_sleep(120);\n');
    await writeFile(path.join(dir, '0001_slow.down.sql'), 'DROP TABLE t;\n');
    let sent = false;
    const started = performance.now();
    const during = await verifyWith(engine, dir, docker(PlainImage), {
      onOutput: (all, child) => {
        if (!sent && /ready in/.test(all)) {
          sent = true;
          // The migration's statement is on its way: give it a moment to be inside pg_sleep.
          setTimeout(() => child.kill('SIGTERM'), 1_500);
        }
      },
    });
    expect(sent).toBe(true);
    expect(during.status ?? during.signal).toBe(143);
    expect(performance.now() - started).toBeLessThan(60_000);
    expect(await toolContainers(engine.socket)).toEqual([]);

    let early = false;
    const starting = await verifyWith(engine, dir, docker(PlainImage), {
      onOutput: (all, child) => {
        if (!early && /Starting container/.test(all)) {
          early = true;
          child.kill('SIGTERM');
        }
      },
    });
    expect(early).toBe(true);
    expect(starting.status ?? starting.signal).toBe(143);
    expect(await toolContainers(engine.socket)).toEqual([]);
  }, 240_000);

  test('no engine, or an image it cannot pull: "could not check", naming what to fix', async () => {
    const none = await verifyWith(engine, fixture('sql-golang-ok'), docker(PlainImage), {
      env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
    });
    expect(none.status).toBe(2);
    expect(none.output).toContain('could not check');
    expect(none.output).toContain(`Could not start container '${PlainImage}'`);
    expect(none.output).toContain(
      'no container engine is reachable (Could not find a working container runtime strategy)',
    );
    expect(none.output).toContain('point DOCKER_HOST at it');

    const missing = 'localhost/pgmv-not-built:1';
    const unpullable = await verifyWith(engine, fixture('sql-golang-ok'), docker(missing));
    expect(unpullable.status).toBe(2);
    expect(unpullable.output).toContain(`Could not start container '${missing}'`);
    expect(unpullable.output).toContain('the engine cannot pull the image (');
    expect(unpullable.output).toContain('pull or build it on the machine first');
    expect(unpullable.output).not.toMatch(/\n\s+at /);
    expect(await toolContainers(engine.socket)).toEqual([]);
  }, 180_000);
});

/**
 * A registry on 127.0.0.1 with @testcontainers/postgresql and everything it depends on, packed from
 * the copies in node_modules: what the Action fetches at run time, served locally.
 */
async function standInRegistry(): Promise<{ url: string; asked: string[]; close(): Promise<void> }> {
  const packages = new Map<string, Map<string, { manifest: Record<string, unknown>; tarball: Buffer }>>();
  const find = (from: string, name: string): string | undefined => {
    for (let dir = from; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json'))) return candidate;
      if (dir === path.dirname(dir) || dir === path.dirname(repoRoot)) return undefined;
    }
  };
  const visit = (dir: string) => {
    const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    > & {
      name: string;
      version: string;
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    const versions = packages.get(manifest.name) ?? new Map();
    if (versions.has(manifest.version)) return;
    const tarball = execFileSync(
      'tar',
      ['-cz', '--exclude=./node_modules', '--transform', 's,^\\.,package,', '-C', dir, '.'],
      { maxBuffer: 256 * 1024 * 1024 },
    );
    versions.set(manifest.version, { manifest, tarball });
    packages.set(manifest.name, versions);
    for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) {
      const found = find(dir, dep);
      if (found) visit(found);
    }
  };
  visit(path.join(repoRoot, 'node_modules', ...TestcontainersPackage.split('/')));
  const asked: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = decodeURIComponent(req.url ?? '/');
    asked.push(url);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const tar = url.match(/^\/(.+)\/-\/(.+)\.tgz$/);
    if (tar) {
      const [name, version] = [tar[1] as string, (tar[2] as string).split('@').pop() as string];
      const entry = packages.get(name)?.get(version);
      if (!entry) return void res.writeHead(404).end('{}');
      return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(entry.tarball);
    }
    const name = url.slice(1);
    const versions = packages.get(name);
    if (!versions)
      return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
    const doc = {
      name,
      'dist-tags': { latest: [...versions.keys()].at(-1) },
      versions: Object.fromEntries(
        [...versions].map(([version, { manifest, tarball }]) => [
          version,
          {
            ...manifest,
            dist: {
              tarball: `${base}/${name}/-/${name.split('/').pop()}@${version}.tgz`,
              integrity: `sha512-${createHash('sha512').update(tarball).digest('base64')}`,
            },
          },
        ]),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    asked,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

engineDescribe('the Action with postgres: docker, testcontainers fetched at run time', (engine) => {
  test('fetched once from the registry into the tool cache, then used from there; a registry without it is a clear error', async () => {
    const registry = await standInRegistry();
    try {
      // The shipped Action alone, as the runner checks it out: no node_modules anywhere above it.
      const action = await temp('pgmv-action-');
      await cp(path.join(repoRoot, 'dist'), path.join(action, 'dist'), { recursive: true });
      const workspace = await temp('pgmv-workspace-');
      await cp(fixture('sql-golang-ok'), path.join(workspace, 'db'), { recursive: true });
      const job = await temp('pgmv-job-');
      const toolCache = path.join(job, 'tool-cache');
      await mkdir(toolCache);
      await writeFile(path.join(job, 'output'), '');
      await writeFile(path.join(job, 'summary.md'), '');
      const env = (registryUrl: string): NodeJS.ProcessEnv => ({
        GITHUB_ACTIONS: 'true',
        GITHUB_EVENT_NAME: 'push',
        GITHUB_WORKSPACE: workspace,
        GITHUB_OUTPUT: path.join(job, 'output'),
        GITHUB_STEP_SUMMARY: path.join(job, 'summary.md'),
        RUNNER_TEMP: job,
        RUNNER_TOOL_CACHE: toolCache,
        PG_MIGRATE_VERIFY_CACHE: '',
        npm_config_registry: registryUrl,
        // npm's own cache may hold the real registry's copies: this run asks the stand-in only.
        npm_config_cache: path.join(job, 'npm-cache'),
        'INPUT_MIGRATIONS-DIR': 'db',
        INPUT_POSTGRES: 'docker',
        'INPUT_POSTGRES-IMAGE': PlainImage,
        INPUT_COMMENT: 'false',
      });
      const script = path.join(action, 'dist', 'index.js');
      const first = await runNode(engine, script, [], { cwd: workspace, env: env(registry.url) });
      expect(first.output).toContain(
        `Fetching ${TestcontainersPackage}@${TestcontainersVersion} from the npm registry`,
      );
      expect(`${first.status}`).toBe('0');
      expect(registry.asked).toContain(`/${TestcontainersPackage}`);
      const cached = path.join(
        toolCache,
        'pg-migrate-verify',
        'testcontainers',
        `${TestcontainersPackage.replace('/', '+')}@${TestcontainersVersion}`,
      );
      expect(first.output).toContain(`testcontainers from ${cached}`);
      expect(await readFile(path.join(job, 'output'), 'utf8')).toMatch(/result<<.*\npassed\n/);

      // Cached: the second run asks the registry nothing.
      const asked = registry.asked.length;
      const second = await runNode(engine, script, [], { cwd: workspace, env: env(registry.url) });
      expect(`${second.status}`).toBe('0');
      expect(second.output).not.toContain('Fetching');
      expect(registry.asked.length).toBe(asked);

      // A registry that does not have it (and no cache): a message that says what to do instead.
      await rm(path.join(toolCache, 'pg-migrate-verify'), { recursive: true, force: true });
      const empty = createServer((_req, res) =>
        res.writeHead(404, { 'content-type': 'application/json' }).end('{}'),
      );
      await new Promise<void>((resolve) => empty.listen(0, '127.0.0.1', resolve));
      try {
        const port = (empty.address() as AddressInfo).port;
        const failed = await runNode(engine, script, [], {
          cwd: workspace,
          env: env(`http://127.0.0.1:${port}/`),
        });
        // The Action fails the step (exit 1) with the reason, as for any run that could not check.
        expect(failed.status).toBe(1);
        expect(failed.output).toContain(
          `::error::Could not check: Could not fetch ${TestcontainersPackage}@${TestcontainersVersion} from the npm registry`,
        );
        expect(failed.output).toContain(`npm install ${TestcontainersPackage}`);
      } finally {
        await new Promise((resolve) => empty.close(resolve));
      }
      expect(await toolContainers(engine.socket)).toEqual([]);
    } finally {
      await registry.close();
    }
  }, 300_000);
});
