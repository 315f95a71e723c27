import type { CheckId } from '../core/findings.js';
import type { MigrationReport } from '../core/report.js';
import type { StepOutcome } from '../migrations/runner.js';
import type { Migration } from '../migrations/types.js';
import type { SetContext } from './context.js';

/** One migration as the checks see it: the migration, its place in the set, and its report row as it fills in. */
export interface MigrationRecord {
  migration: Migration;
  /** Its place among the migrations the checks walk (progress counts these). */
  index: number;
  total: number;
  /** Its place in the workspace's whole list (after the migrations applied without checks). */
  position: number;
  report: MigrationReport;
  /** The tables its up step changed (directly, or through their columns, indexes, constraints, ...). */
  touched?: string[];
  /** The tables its up step created: they hold no data yet, so their locks do not matter. */
  created: Set<string>;
}

/** Records for the migrations the checks walk, which come after `offset` others in the workspace. */
export function recordsOf(migrations: readonly Migration[], offset = 0): MigrationRecord[] {
  return migrations.map((migration, index) => ({
    migration,
    index,
    total: migrations.length,
    position: offset + index,
    created: new Set<string>(),
    report: {
      id: migration.id,
      file: migration.up.file,
      up: null,
      down: null,
      reversible: migration.down ? 'skipped' : 'no-down',
      changes: [],
    },
  }));
}

/** The record as before any step ran: a range is walked again from the start. */
export function resetRecord(record: MigrationRecord): void {
  const [fresh] = recordsOf([record.migration], record.position);
  for (const key of Object.keys(record.report))
    delete (record.report as unknown as Record<string, unknown>)[key];
  Object.assign(record.report, fresh?.report);
  record.created.clear();
  delete record.touched;
}

/** A failed step as a finding at the step's file and line, with the driver's or runner's own words. */
export function stepFinding(
  ctx: SetContext,
  check: CheckId,
  record: MigrationRecord,
  direction: 'up' | 'down',
  outcome: StepOutcome,
  message: string,
): void {
  failedStepFinding(ctx, check, record.migration, direction, outcome, message);
}

/** The same for a migration the checks only applied (no record): a base branch's, production's. */
export function failedStepFinding(
  ctx: SetContext,
  check: CheckId,
  m: Migration,
  direction: 'up' | 'down',
  outcome: StepOutcome,
  message: string,
): void {
  ctx.finding({
    check,
    severity: 'error',
    migration: m.id,
    file: outcome.error?.file ?? (direction === 'up' ? m.up.file : m.down?.file),
    line: outcome.error?.line,
    message,
    detail: outcome.error?.detail,
  });
}

/**
 * What a step said besides its result: errors become findings, notes the set's notes. The same
 * notice from the same migration is told once (a down step runs again while rolling back).
 */
export function fileNotices(
  ctx: SetContext,
  check: CheckId,
  record: MigrationRecord,
  direction: 'up' | 'down',
  outcome: StepOutcome,
  told: Set<string>,
): void {
  const m = record.migration;
  for (const notice of outcome.notices) {
    const message = `\`${m.id}\` (${direction}) ${notice.message}`;
    if (told.has(message)) continue;
    told.add(message);
    if (notice.severity === 'note') ctx.note(message);
    else
      ctx.finding({
        check,
        severity: 'error',
        migration: m.id,
        file: direction === 'up' ? m.up.file : m.down?.file,
        message,
        ...(notice.detail ? { detail: notice.detail } : {}),
      });
  }
}
