import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { describe, test } from '@jest/globals';
import { testcontainersRunsOn } from '../../src/postgres/docker.js';

/**
 * The container engine the docker provider's tests run against: a Docker-compatible API on a unix
 * socket (DOCKER_HOST; `. scripts/engine/setup.sh && pgmv_engine_setup` starts Podman's and builds
 * the images), a Node >= 22.22 for testcontainers 12 (PG_MIGRATE_VERIFY_TEST_NODE, or this Node),
 * and the test images localhost/pgmv-postgres:15 and localhost/pgmv-postgis:15. Without them the
 * suite is skipped with the reason in its name (the summary lists it), except where
 * PG_MIGRATE_VERIFY_REQUIRE_ENGINE=1 (CI), where a missing piece fails it.
 */
export const PlainImage = 'localhost/pgmv-postgres:15';
export const PostgisImage = 'localhost/pgmv-postgis:15';
const Setup = '. scripts/engine/setup.sh && pgmv_engine_setup';

export interface Engine {
  socket: string;
  node: string;
}

function socketOf(env: NodeJS.ProcessEnv): string | undefined {
  const host = env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  return undefined;
}

/** A GET on the engine's API: status and parsed body. */
export function engineGet(socket: string, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path, method: 'GET', timeout: 10_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        text += chunk;
      });
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`the engine at ${socket} did not answer ${path}`)));
    req.on('error', reject);
    req.end();
  });
}

/** Containers the tool started (label `pg-migrate-verify`), running or not. */
export async function toolContainers(socket: string): Promise<string[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: ['pg-migrate-verify'] }));
  const { body } = await engineGet(socket, `/containers/json?all=true&filters=${filters}`);
  return (body as { Id: string; Image: string; State: string }[]).map((c) => `${c.Image} ${c.State}`);
}

function nodeVersionOk(node: string): boolean {
  try {
    return testcontainersRunsOn(
      execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim(),
    );
  } catch {
    return false;
  }
}

/** What is missing for the suite, or the engine. */
async function probe(env: NodeJS.ProcessEnv): Promise<Engine | string> {
  const socket = socketOf(env);
  if (!socket) return 'DOCKER_HOST is not a unix:// socket';
  if (!existsSync(socket)) return `no engine socket at ${socket}`;
  try {
    const ping = await engineGet(socket, '/_ping');
    if (ping.status !== 200) return `the engine at ${socket} answers ${ping.status} to /_ping`;
    for (const image of [PlainImage, PostgisImage]) {
      const found = await engineGet(socket, `/images/${image}/json`);
      if (found.status !== 200) return `the engine has no image ${image}`;
    }
  } catch (error) {
    return `the engine at ${socket} does not answer (${(error as Error).message})`;
  }
  const node = env.PG_MIGRATE_VERIFY_TEST_NODE ?? process.execPath;
  if (!nodeVersionOk(node)) return `no Node >= 22.22 for testcontainers 12 (PG_MIGRATE_VERIFY_TEST_NODE)`;
  return { socket, node };
}

const found = await probe(process.env);

/**
 * `describe` for the engine's tests: `fn` gets the engine. Skipped, saying why, where there is none;
 * failed where PG_MIGRATE_VERIFY_REQUIRE_ENGINE=1.
 */
export function engineDescribe(name: string, fn: (engine: Engine) => void): void {
  if (typeof found !== 'string') {
    describe(name, () => fn(found));
    return;
  }
  const why = `no container engine: ${found}; set one up with \`${Setup}\``;
  if (process.env.PG_MIGRATE_VERIFY_REQUIRE_ENGINE === '1') {
    describe(name, () => {
      test('has a container engine', () => {
        throw new Error(`${why}, and PG_MIGRATE_VERIFY_REQUIRE_ENGINE=1 says the suite must run.`);
      });
    });
    return;
  }
  describe.skip(`${name} [skipped: ${why}]`, () => fn({ socket: '', node: '' }));
}
