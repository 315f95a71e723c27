import pg from 'pg';
import { type Assertion, AssertionRunner, assertionSummary } from './assertions.js';
import { CatalogTracker, defaultExclusions, type Exclusions, readSnapshot } from './catalog/tracker.js';
import { type AssertionRun, assertionFindings, type Side } from './core/assertions.js';
import { CannotCheck } from './core/errors.js';
import type { Finding, NewFinding } from './core/findings.js';
import { formatDuration, plural } from './core/format.js';
import { Inputs } from './core/inputs.js';
import { differenceFinding, Messages } from './core/messages.js';
import type { MigrationReport } from './core/report.js';
import { lostRows } from './core/rows.js';
import { diffSnapshots, type SchemaSnapshot, summarizeChanges } from './core/schema.js';
import { Runner, type StepOutcome } from './migrations/runner.js';
import type { LoadedSet, Migration } from './migrations/types.js';
import { cancelQueries } from './postgres/databases.js';
import type { ScratchDatabase, StartedPostgres } from './postgres/types.js';
import { applySeed, rowCounts } from './seed.js';
import type { Seed, SetSettings, Settings } from './settings.js';
import type { Edges } from './verify.js';

interface Origin {
  server: StartedPostgres;
  migrations: readonly Migration[];
  settings: Settings;
  edges: Edges;
  exclusions: Exclusions;
  /** Assertions by migration id, when the assertions check runs. */
  assertions?: Map<string, Assertion[]>;
  assertCommand?: string;
  /** Seed data and the index of the migration after which it applies. */
  seed?: { seed: Seed; index: number };
}

/** A scratch database with its runner and catalog tracker. */
class Workspace {
  private constructor(
    readonly origin: Origin,
    readonly db: ScratchDatabase,
    readonly runner: Runner,
    /** Catalog reads go through their own session: nothing of ours runs in the migrations' session. */
    readonly catalog: pg.Client,
    readonly tracker: CatalogTracker,
  ) {}

  /** Runs the migration's assertions on this database as it is now. */
  /** One per database, so that each assertion module is loaded once. */
  private asserter?: AssertionRunner;

  async assert(m: Migration, side: Side): Promise<AssertionRun[]> {
    const list = this.origin.assertions?.get(m.id);
    if (!list?.length) return [];
    this.asserter ??= new AssertionRunner({
      databaseUrl: this.db.url,
      timeoutMs: this.origin.settings.stepTimeoutMs,
      command: this.origin.assertCommand,
      workingDirectory: this.origin.settings.workingDirectory,
      env: this.origin.edges.env ?? process.env,
    });
    const runs: AssertionRun[] = [];
    for (const a of list) runs.push(await this.asserter.run(a, side));
    return runs;
  }

  static async create(origin: Origin): Promise<Workspace> {
    const { server, migrations, settings, edges, exclusions } = origin;
    const db = await server.createDatabase();
    const runner = new Runner(migrations, {
      databaseUrl: db.url,
      timeoutMs: settings.stepTimeoutMs,
      cancel: () => cancelQueries(server.adminUrl, db.name),
      health: () => server.health(),
      serverName: `PostgreSQL ${server.version} (${server.provider})`,
      now: edges.now,
    });
    const catalog = new pg.Client({
      connectionString: db.url,
      // The snapshot statements are long: planning one costs ~3-5 ms, more than running it, so plan
      // each once; and the scoped reads want index lookups, never a scan of a whole catalog.
      options: '-c plan_cache_mode=force_generic_plan -c enable_hashjoin=off -c enable_mergejoin=off',
    });
    catalog.on('error', () => {});
    try {
      await runner.open();
      await catalog.connect();
      return new Workspace(origin, db, runner, catalog, await CatalogTracker.open(catalog, exclusions));
    } catch (error) {
      await catalog.end().catch(() => {});
      await runner.close();
      await db.drop().catch(() => {});
      throw error;
    }
  }

  refresh(): Promise<void> {
    return this.tracker.refresh(this.catalog);
  }

  /** Loads the seed data; returns why it failed, or undefined. */
  async seed(): Promise<string | undefined> {
    const { seed, settings, edges } = this.origin;
    if (!seed) return undefined;
    const error = await applySeed(seed.seed, this.db.url, {
      workingDirectory: settings.workingDirectory,
      timeoutMs: settings.stepTimeoutMs,
      env: edges.env ?? process.env,
    });
    // A seed that creates objects must not count as the next migration's change.
    await this.refresh();
    return error;
  }

  async close(): Promise<void> {
    await this.catalog.end().catch(() => {});
    await this.runner.close();
    await this.db.drop().catch(() => {});
  }
}

export interface WalkResult {
  migrations: MigrationReport[];
  notes: string[];
  /** The schema after every migration, read in full; undefined when not every migration applied. */
  head?: SchemaSnapshot;
  exclusions: Exclusions;
}

/**
 * Walks one migration set on one scratch database: for each migration up (apply), then down and up
 * again (reversibility), comparing the schema over what the steps touched; then everything down
 * from the head (rollback-all), compared in full with the empty database.
 */
export async function walkSet(
  set: SetSettings,
  loaded: LoadedSet,
  server: StartedPostgres,
  settings: Settings,
  edges: Edges,
  findings: Finding[],
  assertions?: Map<string, Assertion[]>,
): Promise<WalkResult> {
  const { migrations } = loaded;
  const checks = settings.checks;
  const notes: string[] = [];
  const exclusions = defaultExclusions(loaded.historyTables);
  const reports: MigrationReport[] = migrations.map((m) => ({
    id: m.id,
    file: m.up.file,
    up: null,
    down: null,
    reversible: m.down ? 'skipped' : 'no-down',
    changes: [],
  }));
  const total = migrations.length;
  const width = String(total).length;
  const counter = (i: number) => `${String(i + 1).padStart(width)}/${total}`;
  const finding = (f: NewFinding) => findings.push({ ...f, set: set.name });
  const stepFinding = (
    check: Finding['check'],
    m: Migration,
    direction: 'up' | 'down',
    outcome: StepOutcome,
    message: string,
  ) =>
    finding({
      check,
      severity: 'error',
      migration: m.id,
      file: outcome.error?.file ?? (direction === 'up' ? m.up.file : m.down?.file),
      line: outcome.error?.line,
      message,
      detail: outcome.error?.detail,
    });

  /** What a step said besides its result: errors become findings, notes the set's notes (each once). */
  const noticed = (check: Finding['check'], m: Migration, direction: 'up' | 'down', outcome: StepOutcome) => {
    for (const notice of outcome.notices) {
      const message = `\`${m.id}\` (${direction}) ${notice.message}`;
      if (notice.severity === 'note') {
        if (!notes.includes(message)) notes.push(message);
      } else if (!findings.some((f) => f.set === set.name && f.migration === m.id && f.message === message)) {
        finding({
          check,
          severity: 'error',
          migration: m.id,
          file: direction === 'up' ? m.up.file : m.down?.file,
          message,
          ...(notice.detail ? { detail: notice.detail } : {}),
        });
      }
    }
  };

  const seedIndex = set.seed ? migrations.findIndex((m) => m.id === set.seed?.after) : -1;
  if (set.seed && seedIndex < 0)
    throw new CannotCheck(
      `Input '${Inputs.SeedAfter}' is '${set.seed.after}', which is not a migration in '${set.name}'. Set it to the id of the migration after which the seed's tables exist, e.g. '${migrations[0]?.id ?? '0001_init'}'.`,
    );
  let ws = await Workspace.create({
    server,
    migrations,
    settings,
    edges,
    exclusions,
    assertions,
    assertCommand: set.assertCommand,
    ...(set.seed ? { seed: { seed: set.seed, index: seedIndex } } : {}),
  });
  let seeded = false;
  const seedAfter = async (m: Migration) => {
    seeded = true;
    const error = await ws.seed();
    if (error)
      finding({
        check: 'apply',
        severity: 'error',
        migration: m.id,
        message: Messages.seedFailed(m.id, error),
      });
    else edges.progress(`  seed data loaded after ${m.id}`);
  };
  /** Records a migration's assertion runs; their findings are made once the migration is done. */
  const asserted = (i: number, runs: AssertionRun[]) => {
    if (!runs.length) return;
    const report = reports[i] as MigrationReport;
    report.assertions = [...(report.assertions ?? []), ...runs];
  };
  const assertionsDone = (i: number, m: Migration): { text: string; ok: boolean } => {
    const runs = reports[i]?.assertions;
    if (!runs?.length) return { text: '', ok: true };
    const found = assertionFindings(m.id, runs, settings.assertionsStrict);
    for (const f of found) finding(f);
    return { text: ` · ${assertionSummary(runs)}`, ok: found.length === 0 };
  };
  try {
    const empty = ws.tracker.now();
    if (ws.tracker.mode === 'full') {
      notes.push(
        'The database user may not create event triggers, so every step was followed by a full catalog read (slower, same result).',
      );
    }

    let applied = 0;
    let dirty: string | undefined;
    for (const [i, m] of migrations.entries()) {
      const report = reports[i] as MigrationReport;
      if (seedIndex >= 0 && i - 1 === seedIndex) await seedAfter(migrations[seedIndex] as Migration);
      asserted(i, await ws.assert(m, 'before'));
      // With data in the database, a down step must keep the rows that were there before the up step.
      const rowsBefore =
        seeded && m.down && checks.has('reversibility') ? await rowCounts(ws.catalog, exclusions) : undefined;
      const before = ws.tracker.mark();
      const up = await ws.runner.up(m);
      noticed('apply', m, 'up', up);
      report.up = { ok: up.ok, ms: up.ms };
      if (!up.ok) {
        edges.progress(
          `✗ ${counter(i)} ${m.id}  up failed (${formatDuration(up.ms)})${assertionsDone(i, m).text}`,
        );
        const rest = total - i - 1;
        stepFinding(
          'apply',
          m,
          'up',
          up,
          `\`${m.id}\` (up) ${up.timedOut ? '' : 'failed: '}${up.error?.message ?? 'failed'}. A deploy of this branch stops here${
            rest === 0
              ? ''
              : rest === 1
                ? ' and the migration after it never runs'
                : ` and the ${rest} migrations after it never run`
          }. Fix this step and run the check again.`,
        );
        if (up.timedOut)
          dirty = `\`${m.id}\` was cancelled after the step timeout, so the state of the database is unknown`;
        else if (m.up.noTransaction && !up.error?.ranNothing)
          dirty = `\`${m.id}\` failed part-way outside a transaction, so the database holds an unknown part of it`;
        ws.tracker.release(before);
        break;
      }
      applied++;
      asserted(i, await ws.assert(m, 'after'));
      await ws.refresh();
      const upKeys = ws.tracker.changedSince(before);
      report.changes = summarizeChanges(diffSnapshots(ws.tracker.at(before, upKeys), ws.tracker.now(upKeys)));

      if (!m.down && settings.requireDown && checks.has('reversibility')) {
        finding({
          check: 'reversibility',
          severity: 'error',
          migration: m.id,
          file: m.up.file,
          message: Messages.noDown(m.id, m.noDown ?? 'no down step'),
        });
      }
      if (!m.down || !checks.has('reversibility')) {
        const done = assertionsDone(i, m);
        edges.progress(
          `${done.ok ? '✓' : '✗'} ${counter(i)} ${m.id}  up ${formatDuration(up.ms)}${done.text}`,
        );
        ws.tracker.release(before);
        continue;
      }
      const afterUp = ws.tracker.mark();
      let reversible = true;
      let unknownState = false;
      const down = await ws.runner.down(m);
      noticed('reversibility', m, 'down', down);
      report.down = { ok: down.ok, ms: down.ms };
      let line = `${counter(i)} ${m.id}  up ${formatDuration(up.ms)} · down ${down.ok ? formatDuration(down.ms) : 'failed'}`;
      if (!down.ok) {
        reversible = false;
        unknownState = !!(down.timedOut || m.down.noTransaction);
        stepFinding(
          'reversibility',
          m,
          'down',
          down,
          Messages.downFailed(m.id, down.error?.message ?? 'failed'),
        );
        await ws.refresh();
      } else {
        asserted(i, await ws.assert(m, 'rolled back'));
        if (rowsBefore) {
          const lost = lostRows(rowsBefore, await rowCounts(ws.catalog, exclusions));
          if (lost.length) {
            reversible = false;
            // Later migrations must see the seeded rows again, not a table the down step emptied.
            unknownState = true;
            finding({
              check: 'reversibility',
              severity: 'error',
              migration: m.id,
              file: m.down.file,
              message: Messages.downLosesRows(m.id, lost),
            });
          }
        }
        await ws.refresh();
        const keys = ws.tracker.changedSince(before);
        const diffs = diffSnapshots(ws.tracker.at(before, keys), ws.tracker.now(keys));
        const sides = { before: 'before up', after: 'after down' };
        const errors = diffs.filter((d) => d.severity === 'error');
        const warnings = diffs.filter((d) => d.severity === 'warning');
        const where = { migration: m.id, file: m.down.file };
        if (errors.length) {
          reversible = false;
          finding(
            differenceFinding('reversibility', errors, sides, (t) => Messages.downDiffers(m.id, t), where),
          );
        }
        if (warnings.length) {
          finding(
            differenceFinding(
              'reversibility',
              warnings,
              sides,
              (t) => Messages.downColumnOrder(m.id, t),
              where,
            ),
          );
        }
        const again = await ws.runner.up(m);
        noticed('reversibility', m, 'up', again);
        line += ` · up again ${again.ok ? formatDuration(again.ms) : 'failed'}`;
        if (!again.ok) {
          reversible = false;
          unknownState ||= !!(again.timedOut || m.up.noTransaction);
          stepFinding(
            'reversibility',
            m,
            'up',
            again,
            Messages.reupFailed(m.id, again.error?.message ?? 'failed'),
          );
        } else {
          await ws.refresh();
          const keys2 = ws.tracker.changedSince(afterUp);
          const diffs2 = diffSnapshots(ws.tracker.at(afterUp, keys2), ws.tracker.now(keys2)).filter(
            (d) => d.severity === 'error',
          );
          if (diffs2.length && !errors.length) {
            reversible = false;
            const reupSides = { before: 'after the first up', after: 'after up again' };
            finding(
              differenceFinding('reversibility', diffs2, reupSides, (t) => Messages.reupDiffers(m.id, t), {
                migration: m.id,
                file: m.up.file,
              }),
            );
          }
        }
      }
      report.reversible = reversible ? 'yes' : 'no';
      const done = assertionsDone(i, m);
      edges.progress(`${reversible && done.ok ? '✓' : '✗'} ${line}${done.text}`);
      // One bad migration must not cascade into findings for the good ones after it: put the
      // database back in the state its up step left, however the down/up-again went.
      const keys = ws.tracker.changedSince(afterUp);
      const drifted = diffSnapshots(ws.tracker.at(afterUp, keys), ws.tracker.now(keys)).length > 0;
      ws.tracker.release(before);
      ws.tracker.release(afterUp);
      if (unknownState || drifted || !ws.runner.isApplied(m.id)) {
        const rebuilt = await rebuild(ws.origin, i);
        if (!rebuilt) {
          notes.push(
            `After \`${m.id}\` the database could not be put back in its state after the up step, so the migrations after it were not checked.`,
          );
          return { migrations: reports, notes, exclusions };
        }
        await ws.close();
        ws = rebuilt;
      }
    }

    if (seedIndex >= 0 && seedIndex === total - 1 && applied === total && !seeded)
      await seedAfter(migrations[seedIndex] as Migration);

    // The full schema at the head: the reference for snapshot drift, and a cross-check of tracking.
    const head = applied === total ? await readSnapshot(ws.catalog, exclusions) : undefined;
    if (head) {
      const missed = diffSnapshots(head, ws.tracker.now());
      if (missed.length)
        edges.log.warn(
          `catalog tracking missed ${plural(missed.length, 'change')} (first: ${missed[0]?.key}); please report this`,
        );
    }

    if (checks.has('rollback-all') && applied > 0) {
      if (dirty) notes.push(`rollback-all was not run: ${dirty}.`);
      else {
        let complete = true;
        for (let i = applied - 1; i >= 0; i--) {
          const m = migrations[i] as Migration;
          if (!m.down) {
            notes.push(`rollback-all stopped at \`${m.id}\`: it has no down step (${m.noDown}).`);
            complete = false;
            break;
          }
          const outcome = await ws.runner.down(m);
          noticed('rollback-all', m, 'down', outcome);
          const report = reports[i] as MigrationReport;
          report.down ??= { ok: outcome.ok, ms: outcome.ms };
          edges.progress(
            `${outcome.ok ? '✓' : '✗'} ${counter(i)} ${m.id}  rollback ${outcome.ok ? formatDuration(outcome.ms) : 'failed'}`,
          );
          if (!outcome.ok) {
            stepFinding(
              'rollback-all',
              m,
              'down',
              outcome,
              `\`${m.id}\` (down) failed while rolling back everything from the newest migration: ${outcome.error?.message ?? 'failed'}. An incident rollback past this migration would fail here. Fix the down step.`,
            );
            complete = false;
            break;
          }
        }
        if (complete) {
          const diffs = diffSnapshots(empty, await readSnapshot(ws.catalog, exclusions));
          if (diffs.length) {
            finding(
              differenceFinding(
                'rollback-all',
                diffs,
                { before: 'before the first migration', after: 'after rolling back' },
                Messages.rollbackLeftovers,
              ),
            );
          }
        }
      }
    }
    return { migrations: reports, notes, head, exclusions };
  } finally {
    await ws.close();
  }
}

/** A fresh database with migrations 0..upTo applied; undefined when replaying them fails. */
async function rebuild(origin: Origin, upTo: number): Promise<Workspace | undefined> {
  const fresh = await Workspace.create(origin);
  for (let i = 0; i <= upTo; i++) {
    const outcome = await fresh.runner.up(origin.migrations[i] as Migration);
    if (!outcome.ok) {
      await fresh.close();
      return undefined;
    }
    // The seed goes in where it went the first time (a failing seed was reported then).
    if (origin.seed?.index === i && i < upTo) await fresh.seed();
  }
  await fresh.refresh();
  return fresh;
}
