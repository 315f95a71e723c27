import type { Mark } from '../catalog/tracker.js';
import { type LockObservation, lockFindings, observedLocks, type StepTrace } from '../core/locks.js';
import type { SchemaDifference, SchemaObject } from '../core/schema.js';
import type { SetContext } from './context.js';
import type { MigrationRecord } from './record.js';
import type { Workspace } from './workspace.js';

/** One traced step: its direction, what the database saw, its schema differences, the mark before it. */
export interface TracedStep {
  direction: 'up' | 'down';
  trace: StepTrace;
  diffs: readonly SchemaDifference[];
  before: Mark;
}

/**
 * The locks check for one step of the walk: what the step did to tables that existed before its
 * migration (its locks, how long it held them, rewrites and full scans), as the database saw it.
 * Files findings and the record's lock summary.
 */
export function checkLocks(
  ctx: SetContext,
  ws: Workspace,
  record: MigrationRecord,
  { direction, trace, diffs, before }: TracedStep,
  seeded: boolean,
): void {
  if (!ws.tracing) return;
  const m = record.migration;
  if (direction === 'up')
    for (const d of diffs)
      if (d.object.kind === 'table' && d.change === 'added') record.created.add(d.object.name);
  const step = direction === 'up' ? m.up : m.down;
  const locks = {
    id: m.id,
    direction,
    file: step?.file,
    trace,
    diffs,
    existed: (table: string) => !record.created.has(table),
    constraintsBefore: (table: string) => constraintsAt(ws, before, table),
    severities: ctx.lockRules,
    context: (table: string, lock?: LockObservation) => contextOf(ctx, table, lock, seeded),
  };
  const observed = observedLocks(locks);
  if (observed.length) record.report.locks = [...(record.report.locks ?? []), ...observed];
  for (const f of lockFindings(locks)) {
    ctx.finding(f);
    if (step?.allow?.includes(f.rule))
      ctx.acceptInFile({
        id: m.id,
        check: 'locks',
        rule: f.rule,
        reason: `allowed in ${step.file} (\`-- pg-migrate-verify: allow ${f.rule}\`)`,
      });
  }
}

/** The table's constraints at the mark: what was there before the step. */
function constraintsAt(ws: Workspace, mark: Mark, table: string): SchemaObject[] {
  const now = ws.tracker.now();
  const keys = new Set([...Object.keys(now), ...ws.tracker.changedSince(mark)]);
  return Object.values(ws.tracker.at(mark, keys)).filter(
    (o) => o.kind === 'constraint' && o.parent === table,
  );
}

/** What a reviewer needs to weigh it: how long the seed data kept the table locked, its size on the target. */
function contextOf(
  ctx: SetContext,
  table: string,
  lock: LockObservation | undefined,
  seeded: boolean,
): string {
  const parts: string[] = [];
  if (seeded && lock?.started !== undefined)
    parts.push(
      `With the seed data, ${table} stayed locked for ${Math.max(0, Math.round(lock.ended - lock.started))} ms.`,
    );
  const live = ctx.liveSize?.(table);
  if (live)
    parts.push(
      `On the target, ${table} holds about ${live.rows} rows (${Math.round(live.bytes / 1024)} kB).`,
    );
  return parts.length ? ` ${parts.join(' ')}` : '';
}
