import { defaultExclusions, type Exclusions, type Mark, readSnapshot } from '../catalog/tracker.js';
import { CannotCheck } from '../core/errors.js';
import { plural } from '../core/format.js';
import { Inputs } from '../core/inputs.js';
import { Messages, Notes } from '../core/messages.js';
import type { MigrationReport } from '../core/report.js';
import { diffSnapshots, type SchemaSnapshot } from '../core/schema.js';
import type { FailedStep } from '../migrations/runner.js';
import type { LoadedSet } from '../migrations/types.js';
import type { Assertion } from './assertions.js';
import { heldContext, type SetContext } from './context.js';
import { passable, walkInPasses } from './passes.js';
import { type MigrationRecord, recordsOf, resetRecord } from './record.js';
import { checkReversibility, type Reversal } from './reversibility.js';
import { checkRollbackAll } from './rollback-all.js';
import { done, upTurn, type Walk } from './turn.js';
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

/**
 * Walks one migration set: for each migration up (apply), then down and up again (reversibility),
 * comparing the schema over what the steps touched; then everything down from the head
 * (rollback-all), compared in full with the database it started from. A range whose steps all do
 * what they must is walked in passes (up all, down from the newest, which is also rolling back,
 * then up again: see `walkInPasses`); at the first defect it is walked again one migration at a
 * time. With `prefix`, the first `prefix` migrations are only applied (what a target already has,
 * or what a base branch has), and the walk starts from there. A long walk is cut into consecutive
 * ranges walked at once, each on a database of its own that starts with the migrations before its
 * range applied (see `walkRanges`).
 */
export async function walkSet(
  ctx: SetContext,
  loaded: LoadedSet,
  assertions?: Map<string, Assertion[]>,
  prefix = 0,
): Promise<WalkResult> {
  const total = loaded.migrations.length - prefix;
  const starts = rangeStarts(ctx, prefix, loaded.migrations.length);
  if (starts.length === 1) {
    const range = await walkRange(
      ctx,
      loaded,
      assertions,
      recordsOf(loaded.migrations.slice(prefix), prefix),
    );
    try {
      if (range.walk && !range.lost && ctx.checks.has('rollback-all') && !chainedRollback(ctx, [range])) {
        // Rolling everything back is not traced: its locks are the down steps', told already.
        await range.walk.ws.refresh('off');
        await checkRollbackAll(
          ctx,
          range.walk.ws,
          range.applied,
          range.start ?? {},
          range.dirty,
          range.walk.told,
        );
      }
      return resultOf(range);
    } finally {
      await range.close();
    }
  }
  ctx.log.info(
    `${ctx.name}: walking ${plural(total, 'migration')} in ${starts.length} ranges at once (from ${starts.map((s) => s + 1).join(', ')})`,
  );
  return walkRanges(ctx, loaded, assertions, prefix, starts);
}

/** Fewer migrations than this in a range: applying the ones before it costs more than walking it in parallel saves. */
const MinRange = 25;

/**
 * Where each range starts: one range unless the set is long and `jobs` allows more. A migration's
 * turn costs more as the schema grows (bench: the second half of 1000 costs about 1.5x the first),
 * and a later range first applies every migration before it, so later ranges are shorter.
 */
export function rangeStarts(ctx: Pick<SetContext, 'jobs' | 'seed'>, prefix: number, end: number): number[] {
  const count = end - prefix;
  // A seed's rows follow the history from where they go in: the walk keeps them in one database.
  const ranges = ctx.seed ? 1 : Math.max(1, Math.min(ctx.jobs, Math.floor(count / MinRange)));
  if (ranges === 1) return [prefix];
  // Equal cost under a cost per migration that grows linearly with its position, c(p) = 1 + p/(2 end).
  const cost = (p: number) => p + (p * p) / (4 * end);
  const whole = cost(end) - cost(prefix);
  const starts = [prefix];
  for (let k = 1; k < ranges; k++) {
    const goal = cost(prefix) + (whole * k) / ranges;
    let p = starts[k - 1] as number;
    while (p < end && cost(p) < goal) p++;
    starts.push(p);
  }
  return starts;
}

/**
 * The walk cut into ranges that run at once. What each range reports is held back until every
 * range before it is done, and then told in order: the findings, events and notes come out as one
 * walk would tell them. A range that ends the walk early (a migration that does not apply, a
 * database that cannot be put back) drops what the ranges after it found, as one walk would never
 * have got there. Rolling everything back runs once, from the head, as in one walk.
 */
async function walkRanges(
  ctx: SetContext,
  loaded: LoadedSet,
  assertions: Map<string, Assertion[]> | undefined,
  prefix: number,
  starts: number[],
): Promise<WalkResult> {
  const all = recordsOf(loaded.migrations.slice(prefix), prefix);
  const ends = [...starts.slice(1), loaded.migrations.length];
  const noted = new Set<string>();
  let haltedAt = Number.POSITIVE_INFINITY;
  const ranges = starts.map((start, k) => {
    const held = k > 0 ? heldContext(noteOnce(ctx, noted)) : { ctx: noteOnce(ctx, noted), release() {} };
    const records = all.slice(start - prefix, (ends[k] as number) - prefix);
    const done = walkRange(held.ctx, loaded, assertions, records, () => haltedAt < k, false).then(
      (range) => {
        if (!range.complete) haltedAt = Math.min(haltedAt, k);
        // Only the last range reached rolls back on its database: a range before the last that
        // got through lets its database go now, while the others still walk.
        else if (k < starts.length - 1) range.close().catch(() => {});
        return range;
      },
      (error: unknown) => {
        haltedAt = Math.min(haltedAt, k);
        throw error;
      },
    );
    return { held, records, done };
  });
  const settled = await Promise.allSettled(ranges.map((r) => r.done));
  const walked = settled.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
  try {
    const reached: WalkedRange[] = [];
    for (const [k, outcome] of settled.entries()) {
      (ranges[k] as (typeof ranges)[number]).held.release();
      if (outcome.status === 'rejected') throw outcome.reason;
      const range = outcome.value;
      if (k > 0 && range.startFailed) {
        const m = range.startFailed.migration;
        throw new CannotCheck(
          `\`${m.id}\` applied in one scratch database and failed in another with the same migrations before it (${range.startFailed.outcome.error?.message ?? 'failed'}): its up step depends on more than the schema. Set '${Inputs.Jobs}' to 1 to walk the set on one database.`,
        );
      }
      reached.push(range);
      if (!range.complete) break;
    }
    if (ctx.checks.has('rollback-all') && !chainedRollback(ctx, reached, ranges.length))
      await rollBackRanges(ctx, reached);
    const first = reached[0] as WalkedRange;
    const last = reached.at(-1) as WalkedRange;
    // The ranges never reached keep the rows of a walk that stopped before them.
    const count = ranges.slice(0, reached.length).reduce((n, r) => n + r.records.length, 0);
    const unreached = recordsOf(loaded.migrations.slice(prefix + count), prefix + count);
    return {
      migrations: [...all.slice(0, count), ...unreached].map((r) => r.report),
      touched: new Map(reached.flatMap((r) => [...r.touched])),
      ...(first.start ? { start: first.start } : {}),
      ...(first.startFailed ? { startFailed: first.startFailed } : {}),
      ...(reached.length === ranges.length && last.head ? { head: last.head } : {}),
      exclusions: first.exclusions,
    };
  } finally {
    await Promise.all(walked.map((r) => r.close()));
  }
}

/**
 * Rolls back everything the reached ranges applied, from the head, on the last range's database
 * (it holds every migration): one walk's rolling back, step for step, so that what a down step
 * leaves behind meets the down steps below it as it would there.
 */
async function rollBackRanges(ctx: SetContext, reached: WalkedRange[]): Promise<void> {
  const last = reached.at(-1) as WalkedRange;
  const first = reached[0] as WalkedRange;
  // One walk does not roll back after a database it could not put back.
  if (last.lost || !last.walk) return;
  const told = new Set(reached.flatMap((r) => [...(r.walk?.told ?? [])]));
  const applied = reached.flatMap((r) => r.applied);
  await last.walk.ws.refresh('off');
  await checkRollbackAll(ctx, last.walk.ws, applied, first.start ?? {}, last.dirty, told);
}

/**
 * Rolling everything back, when every range was walked in passes: their down steps already ran one
 * after the other from each range's end, each giving exactly the schema the range below it ends
 * with, so the chains joined are rolling back from the head. Told as rolling back tells it (newest
 * first, stopping at a migration without a down step). False when a range was walked one migration
 * at a time (or not reached): then rolling back runs as a walk of its own.
 */
function chainedRollback(ctx: SetContext, reached: WalkedRange[], ranges = reached.length): boolean {
  if (reached.length < ranges || !reached.every((r) => r.chain)) return false;
  for (const range of [...reached].reverse()) {
    const chain = range.chain as NonNullable<WalkedRange['chain']>;
    for (const record of chain.records) {
      const step = record.report.down ?? { ok: true, ms: 0 };
      ctx.emit({
        kind: 'rollback',
        set: ctx.name,
        index: record.index,
        total: record.total,
        id: record.migration.id,
        step,
      });
    }
    const stop = chain.stoppedAt?.migration;
    if (stop) {
      ctx.note(Notes.rollbackStopped(stop.id, stop.noDown ?? 'no down step'));
      return true;
    }
  }
  return true;
}

/** A range walked, its database still open for rolling back. */
interface WalkedRange extends WalkResult {
  /** Every migration of the range applied, and the database is as they left it. */
  complete: boolean;
  /** The database could not be put back: nothing after runs there, not even rolling back. */
  lost: boolean;
  /** Why rolling back cannot run: a migration did not apply. */
  dirty?: string;
  /** The records whose up steps are in the database, oldest first. */
  applied: MigrationRecord[];
  /** The walk's state; undefined when the migrations before the range did not apply. */
  walk?: Walk;
  /** Walked in passes: the down steps that ran one after the other from the range's end (see `Passed`). */
  chain?: { records: MigrationRecord[]; stoppedAt?: MigrationRecord };
  close(): Promise<void>;
}

/** What a walked range reports. */
function resultOf(range: WalkedRange): WalkResult {
  return {
    migrations: range.migrations,
    touched: range.touched,
    ...(range.start ? { start: range.start } : {}),
    ...(range.startFailed ? { startFailed: range.startFailed } : {}),
    ...(range.head ? { head: range.head } : {}),
    exclusions: range.exclusions,
  };
}

/** Notes told once however many ranges tell them (each range's database reads its catalog the same way). */
function noteOnce(ctx: SetContext, noted: Set<string>): SetContext {
  return {
    ...ctx,
    note: (text) => {
      if (noted.has(text)) return;
      noted.add(text);
      ctx.note(text);
    },
  };
}

/**
 * One range of the walk on a database of its own, which starts with every migration before the
 * range applied; the database stays open for rolling back (`close` it). `halted`: a range before
 * this one ended the walk, so what this one finds will not be used. `alone`: no other range walks
 * beside it.
 */
async function walkRange(
  ctx: SetContext,
  loaded: LoadedSet,
  assertions: Map<string, Assertion[]> | undefined,
  records: MigrationRecord[],
  halted: () => boolean = () => false,
  alone = true,
): Promise<WalkedRange> {
  const exclusions = defaultExclusions(loaded.historyTables);
  const prefix = records[0]?.position ?? loaded.migrations.length;
  const end = prefix + records.length;
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
      walked: records.length,
      ...(seedIndex >= 0 ? { seedIndex } : {}),
      ...(alone ? {} : { beside: true }),
    },
    prefix,
    true,
  );
  const walk: Walk = { ctx, ws, records, told: new Set(), seedIndex, seeded: false };
  let closing: Promise<void> | undefined;
  // Closed once, however many ask.
  const close = () => {
    closing ??= (async () => {
      await walk.ws.close();
      await checkpoints.dropAll();
    })();
    return closing;
  };
  const range = (fields: Partial<WalkedRange>): WalkedRange => ({
    migrations: records.map((r) => r.report),
    touched: touchedOf(records),
    exclusions,
    complete: false,
    lost: false,
    applied: [],
    walk,
    close,
    ...fields,
  });
  try {
    if (seed) seedLoaded(walk, seed.error);
    if (failed) return range({ touched: new Map(), startFailed: failed, walk: undefined });
    const empty = walk.ws.tracker.now();
    if (!ctx.oneAtATime && passable(walk)) {
      const passed = await walkInPasses(walk, records, empty, halted);
      if (passed === 'halted') return range({ start: empty });
      if (passed) {
        passed.tell();
        const head =
          end === loaded.migrations.length ? await headSnapshot(walk, exclusions, prefix > 0) : undefined;
        return range({
          start: empty,
          ...(head ? { head } : {}),
          complete: true,
          applied: records,
          chain: { records: passed.chain, ...(passed.stoppedAt ? { stoppedAt: passed.stoppedAt } : {}) },
        });
      }
      // Something did not do what it must: walked again one migration at a time, which says what,
      // where, and what it does to the migrations after it.
      ctx.log.info(
        `${ctx.name}: a step did not do what it must; walking ${plural(records.length, 'migration')} from ${records[0]?.migration.id} again one at a time, to say which and why`,
      );
      for (const record of records) resetRecord(record);
      await walk.ws.close();
      const again = await Workspace.prepare(walk.ws.plan, prefix, true);
      walk.ws = again.ws;
      if (again.failed) return range({ touched: new Map(), startFailed: again.failed, walk: undefined });
    }
    if (walk.ws.tracker.mode === 'full') ctx.note(Notes.fullCatalogReads);
    if (walk.ws.tracker.mode === 'full' && ctx.checks.has('locks')) ctx.note(Notes.locksNotTraced);
    let applied = 0;
    let dirty: string | undefined;
    for (const record of records) {
      if (halted()) return range({ start: empty });
      if (seedIndex >= prefix && record.position - 1 === seedIndex) await loadSeed(walk);
      const step = await walkMigration(walk, record);
      if (step.stop) {
        dirty = step.dirty;
        break;
      }
      applied++;
      if (step.lost) return range({ start: empty, lost: true });
    }
    const last = loaded.migrations.length - 1;
    if (seedIndex >= prefix && seedIndex === last && applied === records.length && !walk.seeded)
      await loadSeed(walk);
    // The head is the last range's to read.
    const head =
      applied === records.length && end === loaded.migrations.length
        ? await headSnapshot(walk, exclusions, prefix > 0)
        : undefined;
    return range({
      start: empty,
      ...(head ? { head } : {}),
      complete: applied === records.length,
      applied: records.slice(0, applied),
      ...(dirty ? { dirty } : {}),
    });
  } catch (error) {
    await close();
    throw error;
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
  // What runs after the up step: this migration's down step.
  const up = await upTurn(walk, record, 'same');
  if (up.stop) return up;
  if (!up.reversing) return {};
  const { ctx, ws } = walk;
  const { before } = up;
  const afterUp = ws.tracker.mark();
  const reversal = await checkReversibility(
    ctx,
    ws,
    record,
    { before, afterUp },
    up.rowsBefore,
    walk.told,
    walk.seeded,
  );
  record.report.reversible = reversal.reversible ? 'yes' : 'no';
  done(walk, record, reversal.reversible, reversal);
  return (await restore(walk, record, reversal, [before, afterUp])) ? {} : { lost: true };
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
