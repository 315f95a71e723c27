import { CannotCheck, messageOf } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { registerCleanup } from '../lifecycle.js';
import type { StartedPostgres } from './types.js';
import { useServer } from './url.js';

export interface DockerOptions {
  major: number;
  /** A full image reference (e.g. `postgis/postgis:16-3.4`); default `postgres:<major>-alpine`. */
  image?: string;
  log: Logger;
}

/** Runs Postgres in a container through testcontainers, loaded only when asked for. */
export async function startDocker(options: DockerOptions): Promise<StartedPostgres> {
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor < 22) {
    throw new CannotCheck(
      `postgres 'docker' needs Node 22 or newer (this is Node ${process.versions.node}); @testcontainers/postgresql does not load on older Node. Use postgres 'binaries' or 'url'.`,
    );
  }
  let module: typeof import('@testcontainers/postgresql');
  try {
    // Lazy: the import costs ~0.5 s and most runs never need it.
    const name = '@testcontainers/postgresql';
    module = await import(name);
  } catch (error) {
    throw new CannotCheck(
      `postgres 'docker' needs the package @testcontainers/postgresql (${messageOf(error)}). Install it next to pg-migrate-verify, or use postgres 'binaries' or 'url'.`,
      { cause: error },
    );
  }
  const image = options.image ?? `postgres:${options.major}-alpine`;
  options.log.info(`Starting container ${image}`);
  let container: Awaited<ReturnType<InstanceType<typeof module.PostgreSqlContainer>['start']>>;
  try {
    container = await new module.PostgreSqlContainer(image).start();
  } catch (error) {
    throw new CannotCheck(
      `Could not start container '${image}': ${messageOf(error)}. Is a container engine (Docker, Podman) running and reachable?`,
      { cause: error },
    );
  }
  const unregister = registerCleanup({ sync: () => {}, async: async () => void (await container.stop()) });
  return useServer(container.getConnectionUri(), 'docker', async () => {
    await container.stop();
    unregister();
  });
}
