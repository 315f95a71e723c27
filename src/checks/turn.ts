import type { Mark } from '../catalog/tracker.js';
import { Messages } from '../core/messages.js';
import { diffSnapshots, summarizeChanges, touchedTables } from '../core/schema.js';
import { appliedUp, applyFailed, applyUp } from './apply.js';
import { assertionVerdict } from './assertions.js';
import type { SetContext } from './context.js';
import { checkLocks } from './locks.js';
import type { MigrationRecord } from './record.js';
import type { Reversal } from './reversibility.js';
import { rowCounts } from './seed.js';
import type { NextSteps, SentSteps, Workspace } from './workspace.js';

/** The walk's state as it moves through the set. */
export interface Walk {
  ctx: SetContext;
  ws: Workspace;
  records: MigrationRecord[];
  /** Notices already told, so a step that runs twice tells each once. */
  told: Set<string>;
  seedIndex: number;
  seeded: boolean;
}

/** A migration whose up step applied: what its down step is checked against. */
export interface Applied {
  /** The mark taken before the up step; open while `reversing`, released otherwise. */
  before: Mark;
  /** The keys the up step changed. */
  upKeys: string[];
  /** Every object the up step changed, it added (nothing removed, nothing altered). */
  onlyAdded: boolean;
  /** Its down step is checked (it has one, and the reversibility check runs). */
  reversing: boolean;
  /** With seed data: the rows there were before the up step. */
  rowsBefore?: Map<string, number>;
}

/**
 * The first half of a migration's turn: its assertions before, its up step, its assertions after,
 * the schema objects it changes and the locks it took. `next`: what runs after the up step when
 * its down step is checked (else the next migration runs). A migration whose down step is not
 * checked is done here; `stop`: it did not apply (`dirty`: why the database is in doubt).
 */
export async function upTurn(walk: Walk, record: MigrationRecord, next: NextSteps): Promise<UpTurn> {
  const sent = await sendUp(walk, record, next);
  return finishUp(walk, record, sent, await sent.stepped);
}

/** What a migration's turn comes to: it did not apply (`stop`), or it did. */
export type UpTurn = { stop: true; dirty?: string } | ({ stop?: false } & Applied);

/** A migration's up step on its way: what was taken before it, and the step with its catalog read. */
export interface SentUp {
  before: Mark;
  reversing: boolean;
  rowsBefore?: Map<string, number>;
  stepped: Promise<Stepped>;
}
type Stepped = Awaited<ReturnType<typeof applyUp>>;

/**
 * A migration's turn up to its up step, sent: its assertions before, the rows and the mark taken
 * before it. The step runs (and the catalog is read after it) while the caller does other work;
 * `finishUp` takes it from there. (The walk in passes finishes a turn while the next one's step
 * runs.)
 */
export async function sendUp(walk: Walk, record: MigrationRecord, next: NextSteps): Promise<SentUp> {
  const { ctx, ws } = walk;
  const m = record.migration;
  started(ctx, record);
  await ws.assert(record, 'before');
  const reversing = !!m.down && ctx.checks.has('reversibility');
  // With data in the database, a down step must keep the rows that were there before the up step.
  const rowsBefore = walk.seeded && reversing ? await rowCounts(ws.catalog, ws.plan.exclusions) : undefined;
  const before = ws.tracker.mark();
  const stepped = applyUp(ctx, ws, record, walk.told, reversing ? next : 'migration');
  // Awaited later: a failure meanwhile must not count as one nobody handled.
  stepped.catch(() => {});
  return { before, reversing, stepped, ...(rowsBefore ? { rowsBefore } : {}) };
}

/**
 * The rest of a migration's turn once its up step ran: its assertions after, the schema objects it
 * changes and the locks it took. Nothing in it waits on the database when the migration has no
 * assertions: a step sent meanwhile is not read back before it ends.
 */
export async function finishUp(
  walk: Walk,
  record: MigrationRecord,
  sent: SentUp,
  { up, trace }: Stepped,
): Promise<UpTurn> {
  const { ctx, ws } = walk;
  const m = record.migration;
  const { before, reversing, rowsBefore } = sent;
  if (!up.ok) {
    done(walk, record, false);
    ws.tracker.release(before);
    const dirty = applyFailed(ctx, record, up);
    return { stop: true, ...(dirty ? { dirty } : {}) };
  }
  await ws.assert(record, 'after');
  const upTrace = trace ?? { locks: [], rewrites: [] };
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
  }
  return {
    before,
    upKeys,
    onlyAdded: upDiffs.every((d) => d.change === 'added'),
    reversing,
    ...(rowsBefore ? { rowsBefore } : {}),
  };
}

/**
 * A migration's turn whose up step went to the server with others (`Workspace.sendSteps`), the
 * k-th of them: as `upTurn` gives it, for a migration without assertions or seed data whose down
 * step is checked. Undefined when its step cannot be read back alone (see `Workspace.stepAfter`).
 */
export async function upTurnSent(
  walk: Walk,
  record: MigrationRecord,
  sent: SentSteps,
  k: number,
): Promise<UpTurn | undefined> {
  const { ctx, ws } = walk;
  started(ctx, record);
  const before = ws.tracker.mark();
  const step = await ws.stepAfter(sent, k);
  if (!step) {
    ws.tracker.release(before);
    return undefined;
  }
  appliedUp(ctx, record, walk.told, step.outcome);
  const stepped = { up: step.outcome, trace: step.trace };
  return finishUp(walk, record, { before, reversing: true, stepped: Promise.resolve(stepped) }, stepped);
}

/** Says the migration's turn has started. */
function started(ctx: SetContext, record: MigrationRecord): void {
  const { index, total, migration } = record;
  ctx.emit({ kind: 'migration started', set: ctx.name, index, total, id: migration.id });
}

/** Files the migration's assertion findings and says it is done. */
export function done(walk: Walk, record: MigrationRecord, ok: boolean, reversal?: Reversal): void {
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
