import { CannotCheck, messageOf } from '../core/errors.js';
import { Inputs } from '../core/inputs.js';
import type { Logger } from '../core/logger.js';
import { DefaultMajor, startBinaries } from './binaries.js';
import { startDocker } from './docker.js';
import type { ProviderChoice, StartedPostgres } from './types.js';
import { useServer } from './url.js';

export interface PostgresOptions {
  provider: ProviderChoice;
  /** Requested major (14-18); undefined lets the provider choose. */
  major?: number;
  databaseUrl?: string;
  image?: string;
  log: Logger;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts (or connects to) the server the checks run on. `auto`: a given URL, else real binaries,
 * else a container.
 */
export async function startPostgres(options: PostgresOptions): Promise<StartedPostgres> {
  const { provider, databaseUrl, log } = options;
  if (provider === 'url' || (provider === 'auto' && databaseUrl)) {
    if (!databaseUrl) {
      throw new CannotCheck(
        `Input '${Inputs.Postgres}' is 'url' but '${Inputs.DatabaseUrl}' is empty. Set ${Inputs.DatabaseUrl}, or use postgres 'auto'.`,
      );
    }
    return useServer(databaseUrl);
  }
  if (provider === 'docker')
    return startDocker({ major: options.major ?? DefaultMajor, image: options.image, log, env: options.env });
  try {
    return await startBinaries({ major: options.major, log, env: options.env });
  } catch (error) {
    if (provider === 'binaries') throw error;
    log.warn(`PostgreSQL binaries failed (${messageOf(error).split('\n')[0]}); trying docker`);
    try {
      return await startDocker({
        major: options.major ?? DefaultMajor,
        image: options.image,
        log,
        env: options.env,
      });
    } catch (dockerError) {
      // The binaries' reason is usually the one to fix: say both.
      throw new CannotCheck(
        `${messageOf(error)}\nThe docker fallback failed too: ${messageOf(dockerError)}`,
        { cause: error },
      );
    }
  }
}
