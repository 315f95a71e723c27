import { defaultExclusions, type Exclusions, type Mark, readSnapshot } from '../catalog/tracker.js';
import { CannotCheck } from '../core/errors.js';
import { plural } from '../core/format.js';
import { Inputs } from '../core/inputs.js';
import { Messages, Notes } from '../core/messages.js';
import type { MigrationReport } from '../core/report.js';
import { diffSnapshots, type SchemaSnapshot, summarizeChanges, touchedTables } from '../core/schema.js';
import type { FailedStep } from '../migrations/runner.js';
import type { LoadedSet } from '../migrations/types.js';
import { applyFailed, applyUp } from './apply.js';
import { type Assertion, assertionVerdict } from './assertions.js';
import type { SetContext } from './context.js';
import { checkLocks } from './locks.js';
import { type MigrationRecord, recordsOf } from './record.js';
import { checkReversibility, type Reversal } from './reversibility.js';
import { checkRollbackAll } from './rollback-all.js';
import { rowCounts } from './seed.js';
import { Checkpoints, type NextSteps, Workspace } from './workspace.js';

export interface WalkResult {
  migrations: MigrationReport[];
  /** The tables each applied migration's up step changed, by migration id. */
  touched: Map<string, string[]>;
  /** The schema the walked migrations start from: empty, or what the migrations before them leave. */
  start?: SchemaSnapshot;
  /** A migration before the walked ones that did not apply, and why (the walk did not run then). */
  startFailed?: FailedStep;
  /** The schema after every migration, read in full; undefined when not every migration applied. */
  head?: SchemaSnapshot;
  exclusions: Exclusions;
}

/** The walk's state as it moves through the set. */
interface Walk {
  ctx: SetContext;
  ws: Workspace;
  records: MigrationRecord[];
  /** Notices already told, so a step that runs twice tells each once. */
  told: Set<string>;
  seedIndex: number;
  seeded: boolean;
}

/**
 * Walks one migration set on one scratch database: for each migration up (apply), then down and up
 * again (reversibility), comparing the schema over what the steps touched; then everything down
 * from the head (rollback-all), compared in full with the database it started from. With
 * `prefix`, the first `prefix` migrations are only applied (what a target already has, or what a
 * base branch has), and the walk starts from there.
 */
export async function walkSet(
  ctx: SetContext,
  loaded: LoadedSet,
  assertions?: Map<string, Assertion[]>,
  prefix = 0,
): Promise<WalkResult> {
  const exclusions = defaultExclusions(loaded.historyTables);
  const records = recordsOf(loaded.migrations.slice(prefix), prefix);
  const seedIndex = seedIndexOf(ctx, loaded);
  // What a target or a base branch has is only applied (the seed among it, where it goes).
  const checkpoints = new Checkpoints();
  const { ws, failed, seed } = await Workspace.prepare(
    {
      ctx,
      migrations: loaded.migrations,
      exclusions,
      assertions,
      checkpoints,
      ...(seedIndex >= 0 ? { seedIndex } : {}),
    },
    prefix,
    true,
  );
  const walk: Walk = { ctx, ws, records, told: new Set(), seedIndex, seeded: false };
  const reports = records.map((r) => r.report);
  try {
    if (seed) seedLoaded(walk, seed.error);
    if (failed) return { migrations: reports, touched: new Map(), exclusions, startFailed: failed };
    const empty = walk.ws.tracker.now();
    if (walk.ws.tracker.mode === 'full') ctx.note(Notes.fullCatalogReads);
    if (walk.ws.tracker.mode === 'full' && ctx.checks.has('locks')) ctx.note(Notes.locksNotTraced);
    let applied = 0;
    let dirty: string | undefined;
    for (const record of records) {
      if (seedIndex >= prefix && record.position - 1 === seedIndex) await loadSeed(walk);
      const step = await walkMigration(walk, record);
      if (step.stop) {
        dirty = step.dirty;
        break;
      }
      applied++;
      if (step.lost) return { migrations: reports, touched: touchedOf(records), start: empty, exclusions };
    }
    const last = loaded.migrations.length - 1;
    if (seedIndex >= prefix && seedIndex === last && applied === records.length && !walk.seeded)
      await loadSeed(walk);
    const head = applied === records.length ? await headSnapshot(walk, exclusions, prefix > 0) : undefined;
    if (ctx.checks.has('rollback-all')) {
      // Rolling everything back is not traced: its locks are the down steps', told already.
      await walk.ws.refresh('off');
      await checkRollbackAll(ctx, walk.ws, records.slice(0, applied), empty, dirty, walk.told);
    }
    return { migrations: reports, touched: touchedOf(records), start: empty, head, exclusions };
  } finally {
    await walk.ws.close();
    await checkpoints.dropAll();
  }
}

function touchedOf(records: MigrationRecord[]): Map<string, string[]> {
  return new Map(records.filter((r) => r.touched).map((r) => [r.migration.id, r.touched as string[]]));
}

/** Where the seed goes: the index of `seed.after`, or -1 without a seed. */
function seedIndexOf(ctx: SetContext, loaded: LoadedSet): number {
  if (!ctx.seed) return -1;
  const index = loaded.migrations.findIndex((m) => m.id === ctx.seed?.after);
  if (index < 0)
    throw new CannotCheck(
      `Input '${Inputs.SeedAfter}' is '${ctx.seed.after}', which is not a migration in '${ctx.name}'. Set it to the id of the migration after which the seed's tables exist, e.g. '${loaded.migrations[0]?.id ?? '0001_init'}'.`,
    );
  return index;
}

/** Loads the seed; `next`: what the steps after it are. */
async function loadSeed(walk: Walk, next: NextSteps = 'migration'): Promise<void> {
  // What the seed did is not a migration's doing: its trace is dropped.
  seedLoaded(walk, await walk.ws.seed(next));
}

/** The seed went in (`error`: or failed to). */
function seedLoaded(walk: Walk, error: string | undefined): void {
  const { ctx } = walk;
  const after = walk.ws.plan.migrations[walk.seedIndex]?.id ?? '';
  walk.seeded = true;
  if (error)
    ctx.finding({
      check: 'apply',
      severity: 'error',
      migration: after,
      message: Messages.seedFailed(after, error),
    });
  else ctx.emit({ kind: 'seed loaded', set: ctx.name, after });
}

/**
 * One migration's turn: its assertions before, its up step, its assertions after, the schema
 * objects it changes, then its down step and up again. `stop`: it did not apply; `lost`: the
 * database could not be put back after it, so the migrations after it are not checked.
 */
async function walkMigration(
  walk: Walk,
  record: MigrationRecord,
): Promise<{ stop?: boolean; dirty?: string; lost?: boolean }> {
  const { ctx, ws } = walk;
  const m = record.migration;
  ctx.emit({ kind: 'migration started', set: ctx.name, index: record.index, total: record.total, id: m.id });
  await ws.assert(record, 'before');
  // With data in the database, a down step must keep the rows that were there before the up step.
  const reversing = !!m.down && ctx.checks.has('reversibility');
  const rowsBefore = walk.seeded && reversing ? await rowCounts(ws.catalog, ws.plan.exclusions) : undefined;
  const before = ws.tracker.mark();
  const up = await applyUp(ctx, ws, record, walk.told);
  if (!up.ok) {
    done(walk, record, false);
    ws.tracker.release(before);
    return { stop: true, dirty: applyFailed(ctx, record, up) };
  }
  await ws.assert(record, 'after');
  // What runs next: this migration's down step, or the next migration.
  const upTrace = await ws.refresh(reversing ? 'same' : 'migration');
  const upKeys = ws.tracker.changedSince(before);
  const upDiffs = diffSnapshots(ws.tracker.at(before, upKeys), ws.tracker.now(upKeys));
  record.report.changes = summarizeChanges(upDiffs);
  record.touched = touchedTables(upDiffs);
  checkLocks(ctx, ws, record, { direction: 'up', trace: upTrace, diffs: upDiffs, before }, walk.seeded);
  if (!m.down && ctx.requireDown && ctx.checks.has('reversibility'))
    ctx.finding({
      check: 'reversibility',
      severity: 'error',
      migration: m.id,
      file: m.up.file,
      message: Messages.noDown(m.id, m.noDown ?? 'no down step'),
    });
  if (!reversing) {
    done(walk, record, true);
    ws.tracker.release(before);
    return {};
  }
  const afterUp = ws.tracker.mark();
  const reversal = await checkReversibility(
    ctx,
    ws,
    record,
    { before, afterUp },
    rowsBefore,
    walk.told,
    walk.seeded,
  );
  record.report.reversible = reversal.reversible ? 'yes' : 'no';
  done(walk, record, reversal.reversible, reversal);
  return (await restore(walk, record, reversal, [before, afterUp])) ? {} : { lost: true };
}

/** Files the migration's assertion findings and says it is done. */
function done(walk: Walk, record: MigrationRecord, ok: boolean, reversal?: Reversal): void {
  const asserted = assertionVerdict(walk.ctx, record);
  const { report } = record;
  walk.ctx.emit({
    kind: 'migration done',
    set: walk.ctx.name,
    index: record.index,
    total: record.total,
    id: record.migration.id,
    up: report.up ?? { ok: false, ms: 0 },
    ...(reversal ? { down: reversal.down, ...(reversal.again ? { again: reversal.again } : {}) } : {}),
    ok: ok && asserted,
    ...(report.assertions?.length ? { assertions: report.assertions } : {}),
  });
}

/**
 * One bad migration must not cascade into findings for the good ones after it: put the database
 * back in the state its up step left, however the down step and up again went. False when that fails.
 */
async function restore(
  walk: Walk,
  record: MigrationRecord,
  reversal: Reversal,
  marks: Mark[],
): Promise<boolean> {
  const { ws } = walk;
  const [, afterUp] = marks as [Mark, Mark];
  const keys = ws.tracker.changedSince(afterUp);
  const drifted = diffSnapshots(ws.tracker.at(afterUp, keys), ws.tracker.now(keys)).length > 0;
  for (const mark of marks) ws.tracker.release(mark);
  if (!reversal.unknownState && !drifted && ws.runner.isApplied(record.migration.id)) return true;
  const rebuilt = await ws.rebuild(record.position);
  if (!rebuilt) {
    walk.ctx.note(Notes.cannotRestore(record.migration.id));
    return false;
  }
  await ws.close();
  walk.ws = rebuilt;
  return true;
}

/**
 * The full schema at the head: the reference for drift, and a cross-check of the tracking. After a
 * prefix that was only applied, the tracker read everything in full then and has tracked only the
 * few walked migrations since: what it holds is the head, with no second full read.
 */
async function headSnapshot(
  walk: Walk,
  exclusions: Exclusions,
  afterPrefix: boolean,
): Promise<SchemaSnapshot> {
  if (afterPrefix) return walk.ws.tracker.now();
  const head = await readSnapshot(walk.ws.catalog, exclusions);
  const missed = diffSnapshots(head, walk.ws.tracker.now());
  if (missed.length)
    walk.ctx.log.warn(
      `catalog tracking missed ${plural(missed.length, 'change')} (first: ${missed[0]?.key}); please report this`,
    );
  return head;
}
