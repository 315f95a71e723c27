import type { Mark } from '../catalog/tracker.js';
import { differenceFinding, Messages } from '../core/messages.js';
import type { StepResult } from '../core/report.js';
import { lostRows } from '../core/rows.js';
import { diffSnapshots } from '../core/schema.js';
import type { Migration } from '../migrations/types.js';
import type { SetContext } from './context.js';
import { checkLocks } from './locks.js';
import { fileNotices, type MigrationRecord, stepFinding } from './record.js';
import { rowCounts } from './seed.js';
import type { Workspace } from './workspace.js';

/** How one migration's down step and its up step run again went. */
export interface Reversal {
  down: StepResult;
  again?: StepResult;
  reversible: boolean;
  /** The database is in doubt (a step timed out or failed outside a transaction, rows were lost). */
  unknownState: boolean;
}

/**
 * The reversibility check for one applied migration: its down step succeeds, leaves the schema
 * (and the rows) as they were before the up step (`before`), and the up step then applies again
 * to the schema of its first run (`afterUp`).
 */
export async function checkReversibility(
  ctx: SetContext,
  ws: Workspace,
  record: MigrationRecord,
  marks: { before: Mark; afterUp: Mark },
  rowsBefore: Map<string, number> | undefined,
  told: Set<string>,
  seeded = false,
): Promise<Reversal> {
  const m = record.migration as Migration & { down: NonNullable<Migration['down']> };
  // Up again is not traced: the up step's locks were told the first time.
  const { outcome: down, trace } = await ws.step('down', m, 'off');
  fileNotices(ctx, 'reversibility', record, 'down', down, told);
  record.report.down = { ok: down.ok, ms: down.ms };
  if (!down.ok) {
    stepFinding(
      ctx,
      'reversibility',
      record,
      'down',
      down,
      Messages.downFailed(m.id, down.error?.message ?? 'failed'),
    );
    await ws.refresh();
    return { down, reversible: false, unknownState: !!(down.timedOut || m.down.noTransaction) };
  }
  await ws.assert(record, 'rolled back');
  const rows = await keepsRows(ctx, ws, record, rowsBefore);
  // Every locks rule needs a lock or a rewrite on a table that was there: without one in the
  // trace, the down step's own differences are not worth computing.
  if (trace && ws.tracing && (trace.locks.length || trace.rewrites.length)) {
    // What the down step changed, for the locks rules (the up step's diff is the walk's).
    const downKeys = ws.tracker.changedSince(marks.afterUp);
    const diffs = diffSnapshots(ws.tracker.at(marks.afterUp, downKeys), ws.tracker.now(downKeys));
    checkLocks(ctx, ws, record, { direction: 'down', trace, diffs, before: marks.afterUp }, seeded);
  }
  const restored = restoresSchema(ctx, ws, record, marks.before);
  // The next migration's up step is traced again.
  const { outcome: again } = await ws.step('up', m, 'migration');
  fileNotices(ctx, 'reversibility', record, 'up', again, told);
  if (!again.ok) {
    await ws.refresh();
    stepFinding(
      ctx,
      'reversibility',
      record,
      'up',
      again,
      Messages.reupFailed(m.id, again.error?.message ?? 'failed'),
    );
    return {
      down,
      again,
      reversible: false,
      unknownState: !rows || !!(again.timedOut || m.up.noTransaction),
    };
  }
  const reproduced = restored ? reproducesSchema(ctx, ws, record, marks.afterUp) : true;
  return { down, again, reversible: rows && restored && reproduced, unknownState: !rows };
}

/** With seeded rows: the down step keeps the rows that were there before the up step. */
async function keepsRows(
  ctx: SetContext,
  ws: Workspace,
  record: MigrationRecord,
  rowsBefore: Map<string, number> | undefined,
): Promise<boolean> {
  if (!rowsBefore) return true;
  const lost = lostRows(rowsBefore, await rowCounts(ws.catalog, ws.plan.exclusions));
  if (!lost.length) return true;
  const m = record.migration;
  ctx.finding({
    check: 'reversibility',
    severity: 'error',
    migration: m.id,
    file: m.down?.file,
    message: Messages.downLosesRows(m.id, lost),
  });
  return false;
}

/** The schema after the down step equals the schema before the up step (column order: a warning). */
function restoresSchema(ctx: SetContext, ws: Workspace, record: MigrationRecord, before: Mark): boolean {
  const m = record.migration;
  const keys = ws.tracker.changedSince(before);
  const diffs = diffSnapshots(ws.tracker.at(before, keys), ws.tracker.now(keys));
  const sides = { before: 'before up', after: 'after down' };
  const errors = diffs.filter((d) => d.severity === 'error');
  const warnings = diffs.filter((d) => d.severity === 'warning');
  const where = { migration: m.id, file: m.down?.file };
  if (errors.length)
    ctx.finding(
      differenceFinding('reversibility', errors, sides, (t) => Messages.downDiffers(m.id, t), where),
    );
  if (warnings.length)
    ctx.finding(
      differenceFinding('reversibility', warnings, sides, (t) => Messages.downColumnOrder(m.id, t), where),
    );
  return errors.length === 0;
}

/** The up step run again after the down step gives the schema of its first run. */
function reproducesSchema(ctx: SetContext, ws: Workspace, record: MigrationRecord, afterUp: Mark): boolean {
  const m = record.migration;
  const keys = ws.tracker.changedSince(afterUp);
  const diffs = diffSnapshots(ws.tracker.at(afterUp, keys), ws.tracker.now(keys)).filter(
    (d) => d.severity === 'error',
  );
  if (!diffs.length) return true;
  const sides = { before: 'after the first up', after: 'after up again' };
  ctx.finding(
    differenceFinding('reversibility', diffs, sides, (t) => Messages.reupDiffers(m.id, t), {
      migration: m.id,
      file: m.up.file,
    }),
  );
  return false;
}
