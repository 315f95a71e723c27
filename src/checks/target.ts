import { BookkeepingSchema } from '../core/bookkeeping.js';
import { differenceFinding, Messages } from '../core/messages.js';
import type { LiveTable, TargetReport } from '../core/report.js';
import { diffSnapshots, type SchemaSnapshot } from '../core/schema.js';
import { type TargetState, targetState } from '../core/target.js';
import { historyOf } from '../migrations/index.js';
import type { FailedStep } from '../migrations/runner.js';
import type { LoadedSet, Migration } from '../migrations/types.js';
import { readTargetHistory } from '../target/history.js';
import { TargetSession } from '../target/session.js';
import type { Assertion } from './assertions.js';
import type { SetContext } from './context.js';
import { type WalkResult, walkSet } from './walk.js';

/**
 * The deploy gate (`target`), read-only against the live database: its history as its tool reads
 * it (unknown, failed or out-of-order migrations), its schema against the schema the repository's
 * history gives at what it has applied (drift), and a rehearsal of the pending migrations on that
 * state with the usual checks, each with the live size of the tables it touches.
 */
export async function checkTarget(
  ctx: SetContext,
  loaded: LoadedSet,
  url: string,
  assertions?: Map<string, Assertion[]>,
): Promise<{ report: TargetReport; walk: WalkResult }> {
  const session = await TargetSession.open(url);
  try {
    const history = await readTargetHistory(session, loaded.tracking, ctx.targetHistoryTable);
    const state = targetState(history, historyOf(loaded), loaded.rules, 'The target');
    for (const f of state.findings) ctx.finding(f);
    const live = await session.snapshot({
      schemas: [BookkeepingSchema],
      tables: [...new Set([history.tracking.table, ...(loaded.historyTables ?? [])])].map(qualified),
    });
    const ordered = orderedForTarget(loaded, state);
    ctx.log.info(
      `${ctx.name}: target ${session.shown}: ${state.applied.length} applied, ${state.pending.length} pending${state.unknown.length ? `, ${state.unknown.length} unknown` : ''}`,
    );
    // The live size of every table up front: lock findings during the rehearsal name it too.
    const sizes = await liveSizes(session, live);
    const walk = await walkSet(
      { ...ctx, liveSize: (table) => sizes.get(table) },
      { ...loaded, migrations: ordered },
      assertions,
      state.applied.length,
    );
    if (walk.startFailed) ctx.finding(historyFails(walk.startFailed));
    else if (walk.start) fileDrift(ctx, walk.start, live);
    for (const report of walk.migrations) {
      const tables = (walk.touched.get(report.id) ?? []).flatMap((t) => sizes.get(t) ?? []);
      if (tables.length) report.live = tables;
    }
    return {
      report: {
        database: session.shown,
        table: history.tracking.table,
        applied: state.applied.map((e) => e.id),
        pending: state.pending.map((e) => e.id),
        unknown: state.unknown,
      },
      walk,
    };
  } finally {
    await session.close();
  }
}

/** What the target has applied (in the repository's order), then what a deploy would run. */
function orderedForTarget(loaded: LoadedSet, state: TargetState): Migration[] {
  const byId = new Map(loaded.migrations.map((m) => [m.id, m]));
  return [...state.applied, ...state.pending].map((e) => byId.get(e.id) as Migration);
}

function qualified(table: string): string {
  return table.includes('.') ? table : `public.${table}`;
}

function historyFails({ migration, outcome }: FailedStep) {
  return {
    check: 'target' as const,
    severity: 'error' as const,
    migration: migration.id,
    message: Messages.targetHistoryFails(migration.id, outcome.error?.message ?? 'failed'),
  };
}

/** The live schema against the schema the repository's history gives at the target's applied version. */
function fileDrift(ctx: SetContext, history: SchemaSnapshot, live: SchemaSnapshot): void {
  const diffs = diffSnapshots(history, live);
  if (!diffs.length) return;
  ctx.finding(
    differenceFinding(
      'target',
      diffs,
      { before: 'in the history', after: 'on target' },
      Messages.targetDrift,
    ),
  );
}

/** Every table of the target: estimated rows and bytes on disk. */
async function liveSizes(session: TargetSession, live: SchemaSnapshot): Promise<Map<string, LiveTable>> {
  const tables = Object.values(live)
    .filter((o) => o.kind === 'table')
    .map((o) => o.name);
  return new Map((await session.tableSizes(tables)).map((s) => [s.table, s]));
}
