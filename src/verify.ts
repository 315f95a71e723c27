import path from 'node:path';
import type { SetContext } from './checks/context.js';
import type { BaseSet } from './checks/ordering.js';
import { verifySet } from './checks/set.js';
import { CannotCheck, messageOf } from './core/errors.js';
import type { Finding } from './core/findings.js';
import { formatDuration, plural } from './core/format.js';
import { redactUrls } from './core/redact.js';
import type { Acceptance, Report, SetReport } from './core/report.js';
import { applyAcceptances, resultOf } from './core/report.js';
import type { Edges } from './edges.js';
import { checkoutBase } from './git.js';
import { type LoadOptions, loadMigrations } from './migrations/index.js';
import type { LoadedSet } from './migrations/types.js';
import type { ScratchDatabase, StartedPostgres } from './postgres/types.js';
import type { SetSettings, Settings } from './settings.js';

export type { Edges } from './edges.js';

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

/** What one run collects: findings, set reports, timings, the server once it runs. */
interface Run {
  settings: Settings;
  edges: Edges & { env: NodeJS.ProcessEnv };
  findings: Finding[];
  sets: SetReport[];
  timings: Record<string, number>;
  server?: StartedPostgres;
  removeBase?: () => Promise<void>;
  /** Drops the scratch database made ahead (see `spareFirst`) if no check took it. */
  releaseSpare?: () => Promise<void>;
  /** The sets as loaded (the base branch's too): what they keep running ends with the run. */
  loaded: LoadedSet[];
  /** Acceptances the migrations' own files make (`allow` comments), besides the config file's. */
  fileAcceptances: Acceptance[];
}

async function verifyAll(settings: Settings, edges: Edges & { env: NodeJS.ProcessEnv }): Promise<Report> {
  const startedAt = edges.now();
  const run: Run = { settings, edges, findings: [], sets: [], timings: {}, fileAcceptances: [], loaded: [] };
  const timed = async <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const t = edges.now();
    try {
      return await work();
    } finally {
      run.timings[key] = edges.now() - t;
    }
  };
  let basing: Promise<unknown> | undefined;
  let serving: Promise<StartedPostgres> | undefined;
  try {
    const loading = (async () => {
      const loaded: LoadedSet[] = [];
      for (const set of settings.sets) loaded.push(await timed(`load:${set.name}`, () => loadSet(run, set)));
      return loaded;
    })();
    // git compares the base branch's folders with the working tree while the sets load; the server
    // starts meanwhile too, and makes the first scratch database.
    const comparing = timed('base', () => loadBases(run, loading));
    basing = comparing.catch(() => {});
    serving = timed('postgres', () => startServer(run));
    serving.catch(() => {});
    const loaded = await loading;
    const bases = await comparing;
    if (!bases.length) delete run.timings.base;
    const server = await serving;
    for (const [i, set] of settings.sets.entries()) {
      const notes: string[] = [];
      const ctx = setContext(run, set, server, notes);
      edges.emit({ kind: 'set', set: set.name, migrations: (loaded[i] as LoadedSet).migrations.length });
      const report = await timed(`set:${set.name}`, () => verifySet(ctx, loaded[i] as LoadedSet, bases[i]));
      run.sets.push({ ...report, notes });
    }
    return reportOf(run, startedAt, {});
  } catch (error) {
    return reportOf(run, startedAt, { result: 'error', error: await errorText(run, error) });
  } finally {
    // A server still starting when the input turned out bad is let start, then stopped.
    await serving?.catch(() => {});
    await run.releaseSpare?.();
    await run.server
      ?.stop()
      .catch((error) => edges.log.warn(`Could not stop PostgreSQL cleanly: ${messageOf(error)}`));
    for (const set of run.loaded) await set.close?.().catch(() => {});
    // A base still being read when something else failed leaves nothing behind either.
    await basing;
    await run.removeBase?.();
  }
}

/** The loader's options for a set: its commands, the environment, the step timeout. */
function loadOptions(run: Run, set: SetSettings): LoadOptions {
  return {
    commands: set.commands,
    alembicCommand: set.alembicCommand,
    urlVariable: set.urlVariable,
    env: run.edges.env,
    timeoutMs: run.settings.stepTimeoutMs,
  };
}

async function loadSet(run: Run, set: SetSettings): Promise<LoadedSet> {
  const one = await loadMigrations(set.dir, set.format, run.settings.workingDirectory, loadOptions(run, set));
  one.historyTables = [...(one.historyTables ?? []), ...set.historyTables];
  run.loaded.push(one);
  run.edges.log.info(`${set.name}: ${plural(one.migrations.length, 'migration')}, ${one.layout}`);
  return one;
}

/** Each set as the base branch has it, when there is a base ref and a check that needs it. */
async function loadBases(run: Run, loading: Promise<LoadedSet[]>): Promise<(BaseSet | undefined)[]> {
  const { settings, edges } = run;
  const ref = settings.baseRef;
  if (!ref || !(settings.checks.has('ordering') || settings.checks.has('apply'))) return [];
  // SQL files are the whole migration: a folder the branch only adds to needs no copy of the base.
  const sql = loading.then((sets) =>
    settings.sets.filter((_, i) => sets[i]?.format === 'sql').map((s) => s.dir),
  );
  // A set that fails to load is the run's error, told by the caller.
  sql.catch(() => {});
  const base = await checkoutBase(
    ref,
    settings.sets.map((s) => s.dir),
    settings.workingDirectory,
    edges.log,
    settings.sets.filter((s) => s.format === 'command').map((s) => s.dir),
    sql,
  );
  run.removeBase = base.remove;
  const loaded = await loading;
  const bases: BaseSet[] = [];
  for (const [i, set] of settings.sets.entries()) {
    const checkout = base.checkouts[i];
    const one: BaseSet = { ref, commit: base.commit };
    const head = loaded[i] as LoadedSet;
    if (!checkout?.exists) one.loaded = { ...head, migrations: [], findings: [] };
    else if (checkout.unchanged) {
      // Every file the base has is here as it is: its history is this branch's without the new files.
      const files = checkout.unchanged;
      one.loaded = { ...head, migrations: head.migrations.filter((m) => files.has(m.up.file)), findings: [] };
    } else {
      try {
        one.loaded = await loadMigrations(
          checkout.dir,
          set.format,
          checkout.workingDirectory,
          loadOptions(run, set),
        );
        run.loaded.push(one.loaded);
      } catch (error) {
        one.note = `The copy of '${path.relative(settings.workingDirectory, set.dir) || '.'}' on ${ref} could not be read (${messageOf(error)}), so this set was not compared with it.`;
      }
    }
    bases.push(one);
  }
  edges.log.info(`base: ${ref} at ${base.commit.slice(0, 7)}`);
  return bases;
}

async function startServer(run: Run): Promise<StartedPostgres> {
  const { settings, edges } = run;
  const t = edges.now();
  const started = await edges.startPostgres({
    provider: settings.postgres,
    major: settings.postgresVersion,
    databaseUrl: settings.databaseUrl,
    image: settings.postgresImage,
    log: edges.log,
    env: edges.env,
  });
  run.server = started;
  edges.log.info(
    `PostgreSQL ${started.version} (${started.provider}) ready in ${formatDuration(edges.now() - t)}`,
  );
  const { server, release } = spareFirst(started);
  run.releaseSpare = release;
  return server;
}

/**
 * The server, with an empty scratch database made right away (while the sets still load): the
 * first one a check asks for. `release` drops it if no check did.
 */
function spareFirst(server: StartedPostgres): { server: StartedPostgres; release: () => Promise<void> } {
  let spare: Promise<ScratchDatabase> | undefined = server.createDatabase();
  spare.catch(() => {});
  const take = () => {
    const made = spare;
    spare = undefined;
    return made;
  };
  return {
    server: {
      ...server,
      // One that could not be made is asked for again, as if there had been none.
      createDatabase: (options) =>
        (!options && take()?.catch(() => server.createDatabase())) || server.createDatabase(options),
    },
    release: async () => {
      const made = await take()?.catch(() => undefined);
      await made?.drop().catch(() => {});
    },
  };
}

/** The one place the run's settings become what a set's checks need. */
function setContext(run: Run, set: SetSettings, server: StartedPostgres, notes: string[]): SetContext {
  const { settings, edges } = run;
  return {
    name: set.name,
    dir: set.dir,
    assertionsDir: set.assertionsDir,
    workingDirectory: settings.workingDirectory,
    env: edges.env,
    stepTimeoutMs: settings.stepTimeoutMs,
    checks: settings.checks,
    scope: settings.scope,
    jobs: settings.jobs,
    ...(edges.oneAtATime ? { oneAtATime: true } : {}),
    requireDown: settings.requireDown,
    assertionsStrict: settings.assertionsStrict,
    assertCommand: set.assertCommand,
    seed: set.seed,
    snapshotFile: set.snapshotFile,
    updateSnapshot: settings.updateSnapshot,
    modelsCommand: set.modelsCommand,
    accepted: settings.accepted,
    lockRules: settings.lockRules,
    ...(settings.targetDatabaseUrl
      ? { targetDatabaseUrl: settings.targetDatabaseUrl, targetHistoryTable: set.historyTables[0] }
      : {}),
    server,
    log: edges.log,
    now: () => edges.now(),
    emit: (event) => edges.emit(event),
    finding: (f) => {
      const finding = { ...f, set: set.name };
      run.findings.push(finding);
      edges.emit({ kind: 'finding', finding });
    },
    note: (text) => notes.push(text),
    acceptInFile: (acceptance) => {
      if (
        !run.fileAcceptances.some(
          (a) => a.id === acceptance.id && a.rule === acceptance.rule && a.set === set.name,
        )
      )
        run.fileAcceptances.push({ ...acceptance, set: set.name, source: 'file' });
    },
  };
}

function reportOf(run: Run, startedAt: number, extra: Partial<Report>): Report {
  const { settings, sets, server, timings } = run;
  timings.total = run.edges.now() - startedAt;
  const {
    findings: kept,
    accepted,
    unused,
  } = applyAcceptances(run.findings, [...settings.accepted, ...run.fileAcceptances]);
  // A job that checks one set of the file cannot tell that an entry for the others is unused.
  const mine = (a: Acceptance) => !settings.selectedSet || a.set === settings.selectedSet;
  for (const a of unused.filter((u) => u.source !== 'file' && mine(u))) {
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
}

/** Why the run could not check; a server that died between steps (a catalog read, an assertion) is named. */
async function errorText(run: Run, error: unknown): Promise<string> {
  const message = redactUrls(messageOf(error));
  if (error instanceof CannotCheck) return message;
  run.edges.log.debug(redactUrls((error as Error)?.stack ?? message));
  const fault = await run.server?.health().catch(() => undefined);
  if (!fault) return message;
  return `PostgreSQL ${fault.what} during the checks (${message}). That is a fault of the server the checks run on, not of the migrations.${fault.log ? ` Its log ends with:\n${fault.log}\n` : ' '}Run the check again.`;
}
