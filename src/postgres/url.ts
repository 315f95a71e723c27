import { CannotCheck, messageOf } from '../core/errors.js';
import { Inputs } from '../core/inputs.js';
import { redactUrls } from '../core/redact.js';
import { DatabaseFactory, serverVersion } from './databases.js';
import type { ProviderName, StartedPostgres } from './types.js';

/**
 * Uses a server someone else runs (a workflow `services: postgres` container): the checks create
 * scratch databases there and drop every one of them on stop.
 */
export async function useServer(
  url: string,
  provider: ProviderName = 'url',
  onStop?: () => Promise<void>,
): Promise<StartedPostgres> {
  let parsed: URL;
  try {
    parsed = new URL(url);
    if (!/^postgres(ql)?:$/.test(parsed.protocol)) throw new Error(`scheme ${parsed.protocol}`);
  } catch {
    throw new CannotCheck(
      `Input '${Inputs.DatabaseUrl}' is '${redactUrls(url)}', which is not a postgres:// URL. Expected e.g. postgresql://postgres:postgres@localhost:5432/postgres.`,
    );
  }
  let version: { version: string; major: number };
  try {
    version = await serverVersion(url);
  } catch (error) {
    throw new CannotCheck(
      `Could not connect to '${redactUrls(url)}': ${redactUrls(messageOf(error))}. Check that the server is up and the URL, user and password are right.`,
      { cause: error },
    );
  }
  const databases = new DatabaseFactory(url);
  try {
    // Scratch databases are created and dropped here: say so now rather than after the first migration.
    const probe = await databases.create();
    await probe.drop();
  } catch (error) {
    await databases.close();
    throw new CannotCheck(
      `The user in '${redactUrls(url)}' cannot create databases (${messageOf(error)}). Grant CREATEDB or use a superuser on a throwaway server.`,
      { cause: error },
    );
  }
  return {
    provider,
    ...version,
    adminUrl: url,
    createDatabase: (options) => databases.create(options),
    async stop() {
      await databases.dropAll();
      await databases.close();
      await onStop?.();
    },
    async health() {
      try {
        await serverVersion(url, 5_000);
        return undefined;
      } catch (error) {
        return { what: `does not answer at '${redactUrls(url)}' (${redactUrls(messageOf(error))})` };
      }
    },
  };
}
