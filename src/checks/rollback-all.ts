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
 * When the walk started after migrations it only applied (a base branch's, a target's: the first
 * record is not the first migration), `empty` is the schema they leave and only the walked ones
 * are rolled back.
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
  const afterOthers = (applied[0]?.position ?? 0) > 0;
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
  // After migrations that were only applied, the walked ones are few: the tracker's scoped read of
  // what they touched is the schema now; else one full read, independent of the tracking.
  if (afterOthers) await ws.refresh('off');
  const now = afterOthers ? ws.tracker.now() : await readSnapshot(ws.catalog, ws.plan.exclusions);
  const diffs = diffSnapshots(empty, now);
  if (diffs.length) {
    ctx.finding(
      differenceFinding(
        'rollback-all',
        diffs,
        {
          before: afterOthers ? `before \`${applied[0]?.migration.id}\`` : 'before the first migration',
          after: 'after rolling back',
        },
        (text) => Messages.rollbackLeftovers(text, afterOthers ? applied[0]?.migration.id : undefined),
      ),
    );
  }
}
