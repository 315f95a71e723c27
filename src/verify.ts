import path from 'node:path';
import { diffInventories, readInventory } from './catalog/inventory.js';
import { CannotCheck, messageOf } from './core/errors.js';
import { formatDuration, plural } from './core/format.js';
import { redactUrls } from './core/redact.js';
import type { Finding, MigrationReport, Report, SetReport } from './core/report.js';
import { resultOf } from './core/report.js';
import { loadMigrations } from './migrations/index.js';
import { Runner, type StepOutcome } from './migrations/runner.js';
import type { LoadedSet, Migration } from './migrations/types.js';
import { cancelQueries } from './postgres/databases.js';
import type { PostgresOptions } from './postgres/index.js';
import type { Logger, StartedPostgres } from './postgres/types.js';
import type { SetSettings, Settings } from './settings.js';

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

function stepFinding(
  check: Finding['check'],
  set: SetSettings,
  migration: Migration,
  direction: 'up' | 'down',
  outcome: StepOutcome,
  consequence: string,
): Finding {
  const error = outcome.error;
  const file = error?.file ?? (direction === 'up' ? migration.up.file : migration.down?.file);
  return {
    check,
    severity: 'error',
    set: set.name,
    migration: migration.id,
    file,
    line: error?.line,
    message: `\`${migration.id}\` (${direction}) ${outcome.timedOut ? '' : 'failed: '}${error?.message ?? 'failed'}. ${consequence}`,
    detail: error?.detail,
  };
}

async function verifySet(
  set: SetSettings,
  loaded: LoadedSet,
  server: StartedPostgres,
  settings: Settings,
  edges: Edges,
  findings: Finding[],
): Promise<SetReport> {
  const { migrations } = loaded;
  const notes: string[] = [];
  for (const f of loaded.findings) if (settings.checks.has(f.check)) findings.push({ ...f, set: set.name });
  const reports: MigrationReport[] = migrations.map((m) => ({
    id: m.id,
    file: m.up.file,
    up: null,
    down: null,
    reversible: m.down ? 'skipped' : 'no-down',
    changes: [],
  }));

  const db = await server.createDatabase();
  const runner = new Runner(migrations, {
    databaseUrl: db.url,
    timeoutMs: settings.stepTimeoutMs,
    cancel: () => cancelQueries(server.adminUrl, db.name),
    now: edges.now,
  });
  const total = migrations.length;
  const width = String(total).length;
  const counter = (i: number) => `${String(i + 1).padStart(width)}/${total}`;
  try {
    await runner.open();
    const baseline = settings.checks.has('rollback-all') ? await readInventory(runner.connection) : undefined;

    // apply: every migration, in order, onto an empty database.
    let applied = 0;
    let dirty: string | undefined;
    for (const [i, m] of migrations.entries()) {
      const outcome = await runner.up(m);
      (reports[i] as MigrationReport).up = { ok: outcome.ok, ms: outcome.ms };
      edges.progress(`${outcome.ok ? '✓' : '✗'} up   ${counter(i)} ${m.id} (${formatDuration(outcome.ms)})`);
      if (!outcome.ok) {
        const rest = total - i - 1;
        findings.push(
          stepFinding(
            'apply',
            set,
            m,
            'up',
            outcome,
            rest > 0
              ? `A deploy of this branch stops here and ${rest === 1 ? 'the migration after it never runs' : `the ${rest} migrations after it never run`}. Fix this step and run the check again.`
              : 'A deploy of this branch stops here. Fix this step and run the check again.',
          ),
        );
        if (outcome.timedOut)
          dirty = `\`${m.id}\` was cancelled after the step timeout, so the state of the database is unknown`;
        else if (m.up.noTransaction) {
          dirty = `\`${m.id}\` failed part-way outside a transaction, so the database holds an unknown part of it`;
        }
        break;
      }
      applied++;
    }

    // rollback-all: every down step from the head reached, then nothing may be left.
    if (baseline && applied > 0) {
      if (dirty) {
        notes.push(`rollback-all was not run: ${dirty}.`);
      } else {
        let complete = true;
        for (let i = applied - 1; i >= 0; i--) {
          const m = migrations[i] as Migration;
          if (!m.down) {
            notes.push(`rollback-all stopped at \`${m.id}\`: it has no down step (${m.noDown}).`);
            complete = false;
            break;
          }
          const outcome = await runner.down(m);
          (reports[i] as MigrationReport).down = { ok: outcome.ok, ms: outcome.ms };
          edges.progress(
            `${outcome.ok ? '✓' : '✗'} down ${counter(i)} ${m.id} (${formatDuration(outcome.ms)})`,
          );
          if (!outcome.ok) {
            findings.push(
              stepFinding(
                'rollback-all',
                set,
                m,
                'down',
                outcome,
                'Rolling back from the newest migration fails here, so an incident rollback past this migration would fail too. Fix the down step.',
              ),
            );
            complete = false;
            break;
          }
        }
        if (complete) {
          const { added, removed } = diffInventories(baseline, await readInventory(runner.connection));
          if (added.length || removed.length) {
            const parts = [
              added.length ? `left ${plural(added.length, 'object')} behind: ${added.join(', ')}` : '',
              removed.length
                ? `removed ${plural(removed.length, 'object')} the empty database has: ${removed.join(', ')}`
                : '',
            ].filter(Boolean);
            findings.push({
              check: 'rollback-all',
              severity: 'error',
              set: set.name,
              message: `Rolling back every migration from the newest to the first ${parts.join('; ')}. A full rollback does not return to the schema before the first migration, so some down step does not undo its up step. Drop in each down step what its up step creates.`,
            });
          }
        }
      }
    }
  } finally {
    await runner.close();
    await db.drop().catch(() => {});
  }
  return {
    name: set.name,
    dir: path.relative(settings.workingDirectory, set.dir) || '.',
    format: loaded.format,
    formatReason: loaded.layout,
    migrations: reports,
    notes,
  };
}
