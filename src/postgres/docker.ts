import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { CannotCheck, messageOf } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { redactUrls } from '../core/redact.js';
import { fillCacheEntry, registerCleanup } from '../lifecycle.js';
import { cacheRoot } from './binaries.js';
import { serverVersion } from './databases.js';
import type { StartedPostgres } from './types.js';
import { useServer } from './url.js';

const run = promisify(execFile);

export interface DockerOptions {
  major: number;
  /** A full image reference (e.g. `postgis/postgis:16-3.4`); default `postgres:<major>-alpine`. */
  image?: string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

/** The package the provider runs containers with, and the version fetched when it is not installed. */
export const TestcontainersPackage = '@testcontainers/postgresql';
export const TestcontainersVersion = '12.2.0';
/** What testcontainers 12 declares it needs (`engines`). */
const NodeNeeded = [22, 22] as const;

/** Whether testcontainers runs on the Node of this version (`22.23.5`). */
export function testcontainersRunsOn(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > NodeNeeded[0] || (major === NodeNeeded[0] && minor >= NodeNeeded[1]);
}

type PostgresModule = typeof import('@testcontainers/postgresql');
type TestcontainersModule = typeof import('testcontainers');
interface Loaded {
  postgres: PostgresModule;
  testcontainers: TestcontainersModule;
  /** Where it came from: installed next to the tool or the project, or the cache it was fetched into. */
  from: string;
}

/**
 * Loads the package through require from `base` (a file URL or path whose folder starts the
 * node_modules lookup); undefined when it is not found there. Not `import()`: the bundler would
 * turn a dynamic import into a lookup inside the bundle, where the package is not.
 */
function loadFrom(base: string): Loaded | undefined {
  let resolved: string;
  try {
    resolved = createRequire(base).resolve(TestcontainersPackage);
  } catch {
    return undefined;
  }
  const require = createRequire(resolved);
  return {
    postgres: require(resolved) as PostgresModule,
    // Its own copy of testcontainers, for the wait strategy: the one it builds containers with.
    testcontainers: require('testcontainers') as TestcontainersModule,
    from: path.dirname(resolved),
  };
}

/**
 * Fetches the package and what it depends on from the npm registry (the one npm is set to use,
 * `npm_config_registry`) into the cache, once: the Action's bundle does not carry it, as it does
 * not carry the server binaries.
 */
async function fetchTestcontainers(env: NodeJS.ProcessEnv, log: Logger): Promise<string> {
  const spec = `${TestcontainersPackage}@${TestcontainersVersion}`;
  const target = path.join(cacheRoot(env), 'testcontainers', spec.replace('/', '+'));
  const marker = path.join(target, 'node_modules', ...TestcontainersPackage.split('/'), 'package.json');
  try {
    await fillCacheEntry(target, marker, async (staging) => {
      log.info(`Fetching ${spec} from the npm registry (cached in ${path.dirname(target)})`);
      const prefix = path.join(staging, 'package');
      await run(
        'npm',
        [
          'install',
          '--prefix',
          prefix,
          '--no-save',
          '--no-package-lock',
          '--no-audit',
          '--no-fund',
          '--ignore-scripts',
          '--omit=dev',
          '--loglevel=error',
          spec,
        ],
        { cwd: staging, env, timeout: 300_000 },
      );
      return prefix;
    });
  } catch (error) {
    throw new CannotCheck(
      `Could not fetch ${spec} from the npm registry (${
        messageOf(error)
          .split('\n')
          .find((l) => /ERR|error/i.test(l)) ?? messageOf(error).split('\n')[0]
      }). Install it next to pg-migrate-verify (npm install ${TestcontainersPackage}), allow access to the npm registry, or use postgres 'binaries' or 'url'.`,
      { cause: error },
    );
  }
  return target;
}

/**
 * The package from where it is installed (next to the tool, or in the project the run starts in),
 * else from the cache, fetched there the first time.
 */
async function loadTestcontainers(env: NodeJS.ProcessEnv, log: Logger): Promise<Loaded> {
  const here =
    loadFrom(import.meta.url) ?? loadFrom(pathToFileURL(path.join(process.cwd(), 'package.json')).href);
  if (here) return here;
  const cached = await fetchTestcontainers(env, log);
  const loaded = loadFrom(path.join(cached, 'package.json'));
  if (!loaded)
    throw new CannotCheck(
      `${TestcontainersPackage} was fetched into '${cached}' but does not load from there. Delete that folder and run again, or install the package next to pg-migrate-verify.`,
    );
  return loaded;
}

/** Waits until the server in the container takes connections (it may still be starting up). */
async function ready(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await serverVersion(url, 5_000);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** Why a container did not start, and what to do: no engine, an image it cannot get, or else. */
function startFailure(image: string, message: string): string {
  const reason =
    message
      .split('\n')[0]
      ?.trim()
      .replace(/\s+\.?$/, '') ?? '';
  if (
    /no such image|image not known|manifest unknown|pull access denied|not found|unauthorized/i.test(reason)
  )
    return `Could not start container '${image}': the engine cannot pull the image (${reason}). Check the name and tag, pull or build it on the machine first, or log in to its registry.`;
  if (/runtime strategy|ECONNREFUSED|ENOENT|EACCES|socket/i.test(reason))
    return `Could not start container '${image}': no container engine is reachable (${reason}). Start Docker, or Podman's service (podman system service), and point DOCKER_HOST at it, e.g. unix:///run/podman/podman.sock.`;
  return `Could not start container '${image}': ${reason}. Is a container engine (Docker, Podman) running and reachable (DOCKER_HOST), and can it pull '${image}'?`;
}

/**
 * Runs Postgres in a container through testcontainers. The wait is for the port and then for a
 * connection, not the image's health check: engines without a health-check timer (Podman without
 * systemd) never mark a container healthy.
 */
export async function startDocker(options: DockerOptions): Promise<StartedPostgres> {
  const { log } = options;
  const env = options.env ?? process.env;
  if (!testcontainersRunsOn(process.versions.node)) {
    throw new CannotCheck(
      `postgres 'docker' needs Node ${NodeNeeded.join('.')} or newer (this is Node ${process.versions.node}): ${TestcontainersPackage} ${TestcontainersVersion.split('.')[0]} does not run on older Node. Use postgres 'binaries' or 'url', or run on a newer Node.`,
    );
  }
  const tc = await loadTestcontainers(env, log);
  const image = options.image ?? `postgres:${options.major}-alpine`;
  log.info(`Starting container ${image} (testcontainers from ${tc.from})`);
  const starting = new tc.postgres.PostgreSqlContainer(image)
    .withWaitStrategy(tc.testcontainers.Wait.forListeningPorts())
    .withLabels({ 'pg-migrate-verify': String(process.pid) })
    .start();
  // A signal while the container starts: wait for it (the signal handler allows 10 s), then stop it.
  const unregister = registerCleanup({
    sync: () => {},
    async: async () => {
      const container = await starting.catch(() => undefined);
      await container?.stop().catch(() => {});
    },
  });
  let container: Awaited<typeof starting>;
  try {
    container = await starting;
  } catch (error) {
    unregister();
    throw new CannotCheck(startFailure(image, messageOf(error)), { cause: error });
  }
  const url = container.getConnectionUri();
  try {
    await ready(url, 60_000).catch((error) => {
      throw new CannotCheck(
        `The container '${image}' started but PostgreSQL in it took no connections at '${redactUrls(url)}' within 60 s (${messageOf(error)}).`,
        { cause: error },
      );
    });
    return await useServer(url, 'docker', async () => {
      await container.stop();
      unregister();
    });
  } catch (error) {
    await container.stop().catch(() => {});
    unregister();
    throw error;
  }
}
