import path from 'node:path';
import { type SchemaPicture, schemaPicture } from '../core/erd.js';
import { type CheckId, CheckIds } from '../core/findings.js';
import { formatDuration, plural } from '../core/format.js';
import { Messages, Notes } from '../core/messages.js';
import { type HistoryComparison, sameText } from '../core/ordering.js';
import type { SetReport } from '../core/report.js';
import type { FailedStep } from '../migrations/runner.js';
import type { LoadedSet } from '../migrations/types.js';
import { type Assertion, discoverAssertions } from './assertions.js';
import type { SetContext } from './context.js';
import { checkModels } from './drift-models.js';
import { checkSnapshotFile } from './drift-snapshot.js';
import { type BaseSet, baseName, checkOrdering, sharedPrefix } from './ordering.js';
import { failedStepFinding } from './record.js';
import { type ReplayPlan, replayOnBase, replayPlan } from './replay.js';
import { checkTarget } from './target.js';
import { type WalkResult, walkSet } from './walk.js';

/**
 * Every check of one migration set: ordering, the walk (apply, assertions, reversibility,
 * rollback-all), the two-phase replay against the base branch, drift. Findings and notes go
 * through `ctx`; returns the set's report without its notes.
 */
export async function verifySet(
  ctx: SetContext,
  loaded: LoadedSet,
  base: BaseSet | undefined,
): Promise<Omit<SetReport, 'notes'>> {
  for (const note of loaded.notes ?? []) ctx.note(note);
  if (base?.note) ctx.note(base.note);
  const comparison = checkOrdering(ctx, loaded, base);
  const assertions = await findAssertions(ctx, loaded);
  // A deploy gate walks what the target has not applied yet, on the state it has; else everything.
  const gate =
    ctx.targetDatabaseUrl && ctx.checks.has('target')
      ? await checkTarget(ctx, loaded, ctx.targetDatabaseUrl, assertions)
      : undefined;
  // A pull request's check: what the branch shares with its base is only applied, then it walks.
  const unchecked = !gate && ctx.scope === 'changed' && base?.loaded ? sharedPrefix(base.loaded, loaded) : 0;
  if (unchecked)
    ctx.log.info(
      `${ctx.name}: scope changed: ${plural(unchecked, 'migration')} shared with ${base ? baseName(base) : 'the base'} applied without checks, ${plural(loaded.migrations.length - unchecked, 'migration')} checked`,
    );
  const walk = gate?.walk ?? (await walkSet(ctx, loaded, assertions, unchecked));
  if (!gate && walk.startFailed) sharedFailed(ctx, walk.startFailed, base);
  if (base?.loaded && comparison && ctx.checks.has('apply'))
    await replay(ctx, loaded, { ...base, loaded: base.loaded }, comparison, walk);
  await checkDrift(ctx, walk);
  return {
    name: ctx.name,
    dir: path.relative(ctx.workingDirectory, ctx.dir) || '.',
    format: loaded.format,
    formatReason: loaded.layout,
    migrations: walk.migrations,
    scope: ctx.scope,
    ...pictureOf(walk),
    checks: checksRan(ctx, { gate: !!gate, assertions: !!assertions?.size }),
    ...(ctx.scope === 'changed' && base?.loaded ? { unchecked } : {}),
    ...(gate ? { target: gate.report } : {}),
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

/** The set's assertions by migration id, when the assertions check runs; orphan files are findings. */
async function findAssertions(
  ctx: SetContext,
  loaded: LoadedSet,
): Promise<Map<string, Assertion[]> | undefined> {
  if (!ctx.assertionsDir || !ctx.checks.has('assertions')) return undefined;
  const found = await discoverAssertions(
    ctx.assertionsDir,
    ctx.workingDirectory,
    loaded.migrations.map((m) => m.id),
    ctx.assertCommand,
  );
  for (const f of found.findings) ctx.finding(f);
  const count = [...found.byMigration.values()].reduce((n, l) => n + l.length, 0);
  ctx.log.info(
    `${ctx.name}: ${plural(count, 'assertion')} for ${plural(found.byMigration.size, 'migration')}`,
  );
  return found.byMigration;
}

/** A migration the branch shares with its base did not apply, so nothing of the branch's was checked. */
function sharedFailed(
  ctx: SetContext,
  { migration: m, outcome }: FailedStep,
  base: BaseSet | undefined,
): void {
  const error = outcome.error?.message ?? 'failed';
  const message = Messages.sharedUpFailed(m.id, base ? baseName(base) : 'the base branch', error);
  failedStepFinding(ctx, 'apply', m, 'up', outcome, message);
}

/** Two-phase replay, when this branch changes the history the base branch has. */
async function replay(
  ctx: SetContext,
  loaded: LoadedSet,
  base: BaseSet & { loaded: LoadedSet },
  comparison: HistoryComparison,
  walk: WalkResult,
): Promise<void> {
  const changed = comparison.added.length + comparison.edited.length + comparison.removed.length > 0;
  // Without a change (or a base history), production is this branch's history from empty: the walk ran it.
  if (!base.loaded.migrations.length || !changed) return;
  if (!walk.head) {
    ctx.note(Notes.replayNotRun);
    return;
  }
  const started = ctx.now();
  const plan = replayPlan(ctx, base.loaded, loaded, comparison, baseName(base));
  // Production runs exactly this branch's history (new migrations only appended): the walk ran it.
  if (runsAsWalked(plan, loaded)) {
    ctx.log.debug(
      'two-phase replay: production runs the same migrations in the same order as a fresh database',
    );
    return;
  }
  const note = await replayOnBase(ctx, plan, walk.head, walk.exclusions);
  if (note) ctx.note(note);
  ctx.log.debug(`two-phase replay: ${formatDuration(ctx.now() - started)}`);
}

/** Production's sequence (the base's migrations, then the new ones) is the branch's own, text for text. */
function runsAsWalked(plan: ReplayPlan, loaded: LoadedSet): boolean {
  const production = [...plan.production, ...plan.added];
  return (
    production.length === loaded.migrations.length &&
    production.every((m, i) => {
      const own = loaded.migrations[i];
      return own !== undefined && own.id === m.id && own.key === m.key && sameText(own.source, m.source);
    })
  );
}

/** drift-snapshot and drift-models, on the schema after every migration. */
async function checkDrift(ctx: SetContext, walk: WalkResult): Promise<void> {
  const drift = driftChecks(ctx);
  if (drift.length && !walk.head) ctx.note(Notes.driftNotChecked(drift));
  if (!walk.head) return;
  if (drift.includes('drift-snapshot')) {
    const note = await checkSnapshotFile(ctx, walk.head);
    if (note) ctx.note(note);
  }
  if (drift.includes('drift-models')) {
    const note = await checkModels(ctx, walk.head, walk.exclusions);
    if (note) ctx.note(note);
  }
}

/** The drift checks that run: each needs its snapshot file or its models command. */
function driftChecks(ctx: SetContext): ('drift-snapshot' | 'drift-models')[] {
  return (['drift-snapshot', 'drift-models'] as const).filter(
    (c) => ctx.checks.has(c) && (c === 'drift-snapshot' ? ctx.snapshotFile : ctx.modelsCommand),
  );
}

/** The checks that ran for the set: the ones selected, less those it had nothing to run on. */
function checksRan(ctx: SetContext, had: { gate: boolean; assertions: boolean }): CheckId[] {
  const drift = driftChecks(ctx);
  return CheckIds.filter((c) => {
    if (!ctx.checks.has(c)) return false;
    if (c === 'drift-snapshot' || c === 'drift-models') return drift.includes(c);
    if (c === 'target') return had.gate;
    if (c === 'assertions') return had.assertions;
    return true;
  });
}

/**
 * The picture of what the walked migrations did to tables, from the snapshots the walk took: the
 * tables their up steps touched, as they were before the walk and are at its head.
 */
function pictureOf(walk: WalkResult): { picture?: SchemaPicture } {
  if (!walk.start || !walk.head) return {};
  const touched = [...new Set([...walk.touched.values()].flat())].sort();
  const picture = schemaPicture(walk.start, walk.head, touched);
  return picture ? { picture } : {};
}
