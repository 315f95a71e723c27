import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from '@jest/globals';
import { progressLine } from '../../src/core/events.js';
import { silentLogger } from '../../src/core/logger.js';
import { Runner } from '../../src/migrations/runner.js';
import { startBinaries } from '../../src/postgres/binaries.js';
import type { StartedPostgres } from '../../src/postgres/types.js';
import { type RawInputs, resolveSettings, type Settings } from '../../src/settings.js';
import type { Edges } from '../../src/verify.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixture = (name: string) => path.resolve(repoRoot, 'fixtures', name);

export const quietLog = silentLogger;

/** One real server per test file; each verify() gets its own scratch databases on it. */
export async function startTestServer(): Promise<StartedPostgres> {
  return startBinaries({ log: quietLog });
}

/**
 * The test file's server: started before its tests and stopped after them. The object is filled
 * in when the server has started, so use it inside tests and hooks, not at the top of the file.
 */
export function useTestServer(): StartedPostgres {
  const server = {} as StartedPostgres;
  beforeAll(async () => {
    Object.assign(server, await startTestServer());
  });
  afterAll(async () => {
    await server.stop?.();
  });
  return server;
}

/** Edges that reuse the file's server (its stop is the file's business) and record progress lines. */
export function edgesOn(server: StartedPostgres, lines: string[] = []): Edges {
  return {
    log: quietLog,
    emit: (event) => {
      const line = progressLine(event);
      if (line !== undefined) lines.push(line);
    },
    startPostgres: async () => ({ ...server, stop: async () => {} }),
    now: () => performance.now(),
  };
}

/**
 * Settings for a test of `dir`. The locks check is left out unless the test picks checks itself:
 * its warnings (a missing lock_timeout on most ALTERs) would crowd the findings other checks' tests
 * are about; its own tests turn it on.
 */
export function settingsFor(dir: string, raw: RawInputs = {}): Promise<Settings> {
  return resolveSettings({ 'migrations-dir': dir, ...withoutLocks(raw) }, repoRoot);
}

/** `raw` with the locks check skipped, unless it already chooses checks (`only` / `skip`). */
export function withoutLocks(raw: RawInputs = {}): RawInputs {
  return raw.only || raw.skip ? raw : { ...raw, skip: 'locks' };
}

/** An open runner on the database at `url` (a long step timeout, nothing to cancel). */
export async function openRunner(url: string): Promise<Runner> {
  const runner = new Runner({ databaseUrl: url, timeoutMs: 60_000, cancel: async () => {} });
  await runner.open();
  return runner;
}
