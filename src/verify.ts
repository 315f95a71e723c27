import path from 'node:path';
import { discoverAssertions } from './assertions.js';
import { CannotCheck, messageOf } from './core/errors.js';
import type { Finding, NewFinding } from './core/findings.js';
import { formatDuration, plural } from './core/format.js';
import type { Logger } from './core/logger.js';
import { compareHistories, historyFindings, sameText } from './core/ordering.js';
import { redactUrls } from './core/redact.js';
import type { Report, SetReport } from './core/report.js';
import { accepts, applyAcceptances, resultOf } from './core/report.js';
import { checkModels, checkSnapshotFile } from './drift.js';
import { checkoutBase } from './git.js';
import { historyOf, loadMigrations } from './migrations/index.js';
import type { LoadedSet, Migration } from './migrations/types.js';
import type { PostgresOptions } from './postgres/index.js';
import type { StartedPostgres } from './postgres/types.js';
import { replayOnBase } from './replay.js';
import type { SetSettings, Settings } from './settings.js';
import { walkSet } from './walk.js';

/** A migration set as the base branch has it. */
interface BaseSet {
  ref: string;
  commit: string;
  /** Undefined when the base's copy could not be read (the note says why). */
  loaded?: LoadedSet;
  note?: string;
}

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
export async function verify(settings: Settings, given: Edges): Promise<Report> {
  // Migrations that run in this process (modules) read process.env; commands get `env`.
  const restore = setEnvironment(settings.env);
  try {
    return await verifyAll(settings, { ...given, env: { ...(given.env ?? process.env), ...settings.env } });
  } finally {
    restore();
  }
}

/** Sets variables in process.env; returns a function that puts the old values back. */
function setEnvironment(env: Record<string, string>): () => void {
  const saved = Object.keys(env).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, env);
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

async function verifyAll(settings: Settings, edges: Edges): Promise<Report> {
  const startedAt = edges.now();
  const timings: Record<string, number> = {};
  const findings: Finding[] = [];
  const sets: SetReport[] = [];
  let server: StartedPostgres | undefined;
  const report = (extra: Partial<Report>): Report => {
    timings.total = edges.now() - startedAt;
    const { findings: kept, accepted, unused } = applyAcceptances(findings, settings.accepted);
    for (const a of unused) {
      const set = sets.find((s) => s.name === a.set) ?? sets[0];
      set?.notes.push(
        `The config file accepts ${a.check} findings for \`${a.id}\` ("${a.reason}"), but there are none: remove the entry.`,
      );
    }
    return {
      version: 1,
      result: resultOf(kept, settings.failOn),
      postgres: server ? { version: server.version, provider: server.provider } : null,
      sets,
      findings: kept,
      ...(accepted.length ? { accepted } : {}),
      timings,
      ...extra,
    };
  };
  let removeBase: (() => Promise<void>) | undefined;
  try {
    const loaded: LoadedSet[] = [];
    for (const set of settings.sets) {
      const t = edges.now();
      const one = await loadMigrations(set.dir, set.format, settings.workingDirectory, {
        commands: set.commands,
        alembicCommand: set.alembicCommand,
        urlVariable: set.urlVariable,
        env: edges.env,
        timeoutMs: settings.stepTimeoutMs,
      });
      one.historyTables = [...(one.historyTables ?? []), ...set.historyTables];
      edges.log.info(`${set.name}: ${plural(one.migrations.length, 'migration')}, ${one.layout}`);
      loaded.push(one);
      timings[`load:${set.name}`] = edges.now() - t;
    }
    const bases: (BaseSet | undefined)[] = [];
    const ref = settings.baseRef;
    if (ref && (settings.checks.has('ordering') || settings.checks.has('apply'))) {
      const t = edges.now();
      const base = await checkoutBase(
        ref,
        settings.sets.map((s) => s.dir),
        settings.workingDirectory,
        edges.log,
        settings.sets.filter((s) => s.format === 'command').map((s) => s.dir),
      );
      removeBase = base.remove;
      for (const [i, set] of settings.sets.entries()) {
        const checkout = base.checkouts[i];
        const one: BaseSet = { ref, commit: base.commit };
        if (checkout?.exists) {
          try {
            one.loaded = await loadMigrations(checkout.dir, set.format, checkout.workingDirectory, {
              commands: set.commands,
              alembicCommand: set.alembicCommand,
              urlVariable: set.urlVariable,
              env: edges.env,
              timeoutMs: settings.stepTimeoutMs,
            });
          } catch (error) {
            one.note = `The copy of '${path.relative(settings.workingDirectory, set.dir) || '.'}' on ${ref} could not be read (${messageOf(error)}), so this set was not compared with it.`;
          }
        } else {
          one.loaded = { ...(loaded[i] as LoadedSet), migrations: [], findings: [] };
        }
        bases.push(one);
      }
      timings.base = edges.now() - t;
      edges.log.info(`base: ${ref} at ${base.commit.slice(0, 7)}`);
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
      sets.push(await verifySet(set, loaded[i] as LoadedSet, bases[i], server, settings, edges, findings));
      timings[`set:${set.name}`] = edges.now() - t0;
    }
    return report({});
  } catch (error) {
    let message = redactUrls(messageOf(error));
    if (!(error instanceof CannotCheck)) {
      edges.log.debug(redactUrls((error as Error)?.stack ?? message));
      // A server that died between steps (during a catalog read, an assertion) is the same fault.
      const fault = await server?.health().catch(() => undefined);
      if (fault)
        message = `PostgreSQL ${fault.what} during the checks (${message}). That is a fault of the server the checks run on, not of the migrations.${fault.log ? ` Its log ends with:\n${fault.log}\n` : ' '}Run the check again.`;
    }
    return report({ result: 'error', error: message });
  } finally {
    await server
      ?.stop()
      .catch((error) => edges.log.warn(`Could not stop PostgreSQL cleanly: ${messageOf(error)}`));
    await removeBase?.();
  }
}

async function verifySet(
  set: SetSettings,
  loaded: LoadedSet,
  base: BaseSet | undefined,
  server: StartedPostgres,
  settings: Settings,
  edges: Edges,
  findings: Finding[],
): Promise<SetReport> {
  const finding = (f: NewFinding) => findings.push({ ...f, set: set.name });
  const notes: string[] = [];
  const ordering = settings.checks.has('ordering');
  if (ordering) {
    for (const f of loaded.findings) finding(f);
    for (const f of historyFindings(historyOf(loaded), loaded.rules)) finding(f);
  }
  notes.push(...(loaded.notes ?? []));
  if (base?.note) notes.push(base.note);
  const baseName = base ? `${base.ref} (${base.commit.slice(0, 7)})` : '';
  const comparison = base?.loaded
    ? compareHistories(historyOf(base.loaded), historyOf(loaded), loaded.rules, baseName)
    : undefined;
  if (comparison && ordering) for (const f of comparison.findings) finding(f);

  let assertions: Awaited<ReturnType<typeof discoverAssertions>>['byMigration'] | undefined;
  if (set.assertionsDir && settings.checks.has('assertions')) {
    const found = await discoverAssertions(
      set.assertionsDir,
      settings.workingDirectory,
      loaded.migrations.map((m) => m.id),
      set.assertCommand,
    );
    for (const f of found.findings) finding(f);
    assertions = found.byMigration;
    edges.log.info(
      `${set.name}: ${plural(
        [...found.byMigration.values()].reduce((n, l) => n + l.length, 0),
        'assertion',
      )} for ${plural(found.byMigration.size, 'migration')}`,
    );
  }

  const walk = await walkSet(set, loaded, server, settings, edges, findings, assertions);
  notes.push(...walk.notes);

  if (base?.loaded && comparison && settings.checks.has('apply')) {
    const changed = comparison.added.length + comparison.edited.length + comparison.removed.length > 0;
    if (!base.loaded.migrations.length || !changed) {
      // Production is this branch's history from empty: the walk already ran exactly that.
    } else if (!walk.head) {
      notes.push("Two-phase replay not run: this branch's own history does not apply from empty.");
    } else {
      const t = edges.now();
      const note = await replayOnBase(
        replayPlan(set, base.loaded, loaded, comparison, settings, baseName),
        walk.head,
        walk.exclusions,
        server,
        settings,
        edges,
        finding,
      );
      if (note) notes.push(note);
      edges.log.debug(`two-phase replay: ${formatDuration(edges.now() - t)}`);
    }
  }
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
    ...(base?.loaded && comparison
      ? {
          base: {
            ref: base.ref,
            commit: base.commit,
            migrations: base.loaded.migrations.length,
            added: comparison.added.map((e) => e.id),
          },
        }
      : {}),
  };
}

/**
 * What production runs: the base's migrations as the base has them (an accepted edit as this branch
 * has it, an accepted deletion not at all), then this branch's new ones and changed repeatables.
 */
function replayPlan(
  set: SetSettings,
  base: LoadedSet,
  head: LoadedSet,
  comparison: ReturnType<typeof compareHistories>,
  settings: Settings,
  baseName: string,
) {
  const accepted = (id: string) =>
    settings.accepted.some((a) => accepts(a, { check: 'ordering', migration: id, set: set.name }));
  const headByKey = new Map(head.migrations.filter((m) => !m.repeatable).map((m) => [m.key, m]));
  const production: Migration[] = [];
  for (const m of base.migrations) {
    const now = m.repeatable ? undefined : headByKey.get(m.key);
    if (!m.repeatable && !now && accepted(m.id)) continue;
    if (now && comparison.edited.includes(m.key) && (accepted(now.id) || accepted(m.id)))
      production.push(now);
    else production.push(m);
  }
  const addedIds = new Set(comparison.added.map((e) => e.id));
  const baseRepeatables = new Map(base.migrations.filter((m) => m.repeatable).map((m) => [m.id, m.source]));
  const added = head.migrations.filter(
    (m) => addedIds.has(m.id) || (m.repeatable && !sameText(baseRepeatables.get(m.id) ?? '', m.source)),
  );
  return { production, added, baseName };
}
