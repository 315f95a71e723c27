import { readSnapshot } from '../catalog/tracker.js';
import { differenceFinding, Messages, Notes } from '../core/messages.js';
import type { SchemaSnapshot } from '../core/schema.js';
import { diffSnapshots } from '../core/schema.js';
import type { SetContext } from './context.js';
import { fileNotices, type MigrationRecord, stepFinding } from './record.js';
import type { Workspace } from './workspace.js';

/**
 * The rollback-all check: every applied migration rolled back from the newest to the first
 * succeeds, and leaves the empty database's schema (`empty`), object for object. It stops at a
 * migration without a down step, and does not run on a database in doubt (`dirty` says why).
 */
export async function checkRollbackAll(
  ctx: SetContext,
  ws: Workspace,
  applied: readonly MigrationRecord[],
  empty: SchemaSnapshot,
  dirty: string | undefined,
  told: Set<string>,
): Promise<void> {
  if (!applied.length) return;
  if (dirty) {
    ctx.note(Notes.rollbackNotRun(dirty));
    return;
  }
  for (const record of [...applied].reverse()) {
    const m = record.migration;
    if (!m.down) {
      ctx.note(Notes.rollbackStopped(m.id, m.noDown ?? 'no down step'));
      return;
    }
    const outcome = await ws.runner.down(m);
    fileNotices(ctx, 'rollback-all', record, 'down', outcome, told);
    record.report.down ??= { ok: outcome.ok, ms: outcome.ms };
    ctx.emit({
      kind: 'rollback',
      set: ctx.name,
      index: record.index,
      total: record.total,
      id: m.id,
      step: { ok: outcome.ok, ms: outcome.ms },
    });
    if (!outcome.ok) {
      stepFinding(
        ctx,
        'rollback-all',
        record,
        'down',
        outcome,
        Messages.rollbackFailed(m.id, outcome.error?.message ?? 'failed'),
      );
      return;
    }
  }
  const diffs = diffSnapshots(empty, await readSnapshot(ws.catalog, ws.plan.exclusions));
  if (diffs.length) {
    ctx.finding(
      differenceFinding(
        'rollback-all',
        diffs,
        { before: 'before the first migration', after: 'after rolling back' },
        Messages.rollbackLeftovers,
      ),
    );
  }
}
