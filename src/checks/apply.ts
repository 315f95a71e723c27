import type { StepTrace } from '../core/locks.js';
import { Messages } from '../core/messages.js';
import type { StepOutcome } from '../migrations/runner.js';
import type { SetContext } from './context.js';
import { fileNotices, type MigrationRecord, stepFinding } from './record.js';
import type { NextSteps, Workspace } from './workspace.js';

/**
 * The apply check for one migration: its up step runs on the state the migrations before it left,
 * and the catalog is read after it (`trace`: its locks, when it applied; `next` as for `refresh`).
 */
export async function applyUp(
  ctx: SetContext,
  ws: Workspace,
  record: MigrationRecord,
  told: Set<string>,
  next: NextSteps,
): Promise<{ up: StepOutcome; trace?: StepTrace }> {
  const { outcome: up, trace } = await ws.step('up', record.migration, next);
  appliedUp(ctx, record, told, up);
  return { up, ...(trace ? { trace } : {}) };
}

/** What an up step said and its time, on the migration's record. */
export function appliedUp(
  ctx: SetContext,
  record: MigrationRecord,
  told: Set<string>,
  up: StepOutcome,
): void {
  fileNotices(ctx, 'apply', record, 'up', up, told);
  record.report.up = { ok: up.ok, ms: up.ms };
}

/** A failed up step as a finding; returns why the database is in doubt afterwards, when it is. */
export function applyFailed(ctx: SetContext, record: MigrationRecord, up: StepOutcome): string | undefined {
  const m = record.migration;
  const rest = record.total - record.index - 1;
  stepFinding(
    ctx,
    'apply',
    record,
    'up',
    up,
    Messages.upFailed(m.id, up.error?.message ?? 'failed', !!up.timedOut, rest),
  );
  if (up.timedOut)
    return `\`${m.id}\` was cancelled after the step timeout, so the state of the database is unknown`;
  if (m.up.noTransaction && !up.error?.ranNothing)
    return `\`${m.id}\` failed part-way outside a transaction, so the database holds an unknown part of it`;
  return undefined;
}
