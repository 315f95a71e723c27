import path from 'node:path';
import { CannotCheck, messageOf } from './core/errors.js';
import { formatDuration, plural } from './core/format.js';
import { redactUrls } from './core/redact.js';
import type { Finding, Report, SetReport } from './core/report.js';
import { resultOf } from './core/report.js';
import { checkModels, checkSnapshotFile } from './drift.js';
import { loadMigrations } from './migrations/index.js';
import type { LoadedSet } from './migrations/types.js';
import type { PostgresOptions } from './postgres/index.js';
import type { Logger, StartedPostgres } from './postgres/types.js';
import type { SetSettings, Settings } from './settings.js';
import { walkSet } from './walk.js';

/** Everything verify() reaches outside itself, passed in so tests and both entry points choose. */
export interface Edges {
  log: Logger;
  /** One line per migration step as it runs. */
  progress(line: string): void;
  startPostgres(options: PostgresOptions): Promise<StartedPostgres>;
  /** Milliseconds from a monotonic clock. */
  now(): number;
  env?: NodeJS.ProcessEnv;
}

/** Runs every selected check and returns the report. A broken migration is a finding, never a throw. */
export async function verify(settings: Settings, edges: Edges): Promise<Report> {
  const startedAt = edges.now();
  const timings: Record<string, number> = {};
  const findings: Finding[] = [];
  const sets: SetReport[] = [];
  let server: StartedPostgres | undefined;
  const report = (extra: Partial<Report>): Report => {
    timings.total = edges.now() - startedAt;
    return {
      version: 1,
      result: resultOf(findings, settings.failOn),
      postgres: server ? { version: server.version, provider: server.provider } : null,
      sets,
      findings,
      timings,
      ...extra,
    };
  };
  try {
    const loaded: LoadedSet[] = [];
    for (const set of settings.sets) {
      const t = edges.now();
      const one = await loadMigrations(set.dir, set.format, settings.workingDirectory);
      edges.log.info(`${set.name}: ${plural(one.migrations.length, 'migration')}, ${one.layout}`);
      loaded.push(one);
      timings[`load:${set.name}`] = edges.now() - t;
    }
    const t = edges.now();
    server = await edges.startPostgres({
      provider: settings.postgres,
      major: settings.postgresVersion,
      databaseUrl: settings.databaseUrl,
      image: settings.postgresImage,
      log: edges.log,
      env: edges.env,
    });
    timings.postgres = edges.now() - t;
    edges.log.info(
      `PostgreSQL ${server.version} (${server.provider}) ready in ${formatDuration(timings.postgres)}`,
    );
    for (const [i, set] of settings.sets.entries()) {
      const t0 = edges.now();
      sets.push(await verifySet(set, loaded[i] as LoadedSet, server, settings, edges, findings));
      timings[`set:${set.name}`] = edges.now() - t0;
    }
    return report({});
  } catch (error) {
    const message = redactUrls(messageOf(error));
    if (!(error instanceof CannotCheck)) edges.log.debug(redactUrls((error as Error)?.stack ?? message));
    return report({ result: 'error', error: message });
  } finally {
    await server
      ?.stop()
      .catch((error) => edges.log.warn(`Could not stop PostgreSQL cleanly: ${messageOf(error)}`));
  }
}

async function verifySet(
  set: SetSettings,
  loaded: LoadedSet,
  server: StartedPostgres,
  settings: Settings,
  edges: Edges,
  findings: Finding[],
): Promise<SetReport> {
  for (const f of loaded.findings) if (settings.checks.has(f.check)) findings.push({ ...f, set: set.name });
  const walk = await walkSet(set, loaded, server, settings, edges, findings);
  const notes = [...walk.notes];
  const finding = (f: Omit<Finding, 'set'>) => findings.push({ ...f, set: set.name });
  const drift = (['drift-snapshot', 'drift-models'] as const).filter(
    (c) => settings.checks.has(c) && (c === 'drift-snapshot' ? set.snapshotFile : set.modelsCommand),
  );
  if (drift.length && !walk.head)
    notes.push(`${drift.join(' and ')} not checked: not every migration applied.`);
  if (walk.head && drift.includes('drift-snapshot')) {
    const note = await checkSnapshotFile(set, walk.head, settings, finding);
    if (note) notes.push(note);
  }
  if (walk.head && drift.includes('drift-models')) {
    const note = await checkModels(
      set,
      walk.head,
      server,
      settings,
      walk.exclusions,
      edges.env ?? process.env,
      finding,
    );
    if (note) notes.push(note);
  }
  return {
    name: set.name,
    dir: path.relative(settings.workingDirectory, set.dir) || '.',
    format: loaded.format,
    formatReason: loaded.layout,
    migrations: walk.migrations,
    notes,
  };
}
