import { type Exclusions, snapshotAt } from '../catalog/tracker.js';
import { differenceFinding, Messages, Notes } from '../core/messages.js';
import { type compareHistories, sameText } from '../core/ordering.js';
import { accepts } from '../core/report.js';
import { diffSnapshots, type SchemaSnapshot } from '../core/schema.js';
import type { LoadedSet, Migration } from '../migrations/types.js';
import type { SetContext } from './context.js';
import { failedStepFinding } from './record.js';
import { runnerFor } from './workspace.js';

export interface ReplayPlan {
  /** What production ran: the base branch's migrations, with its file contents, in its order. */
  production: Migration[];
  /** What this branch adds on top, in this branch's order. */
  added: Migration[];
  /** The base, for messages: `main (1a2b3c4)`. */
  baseName: string;
}

/**
 * Two-phase replay: applies the base branch's migrations as the base has them, then this branch's
 * new ones on top (what a deploy does to production), and compares the schema it ends with to the
 * schema this branch's history builds from empty (`fresh`). Returns a note when it could not run.
 */
export async function replayOnBase(
  ctx: SetContext,
  plan: ReplayPlan,
  fresh: SchemaSnapshot,
  exclusions: Exclusions,
): Promise<string | undefined> {
  // Each step needs a unique name in the runner, even when a base migration and a new one share an id.
  const seen = new Set<string>();
  const all = [...plan.production, ...plan.added].map((m) => {
    let id = m.id;
    for (let n = 2; seen.has(id); n++) id = `${m.id}#${n}`;
    seen.add(id);
    return id === m.id ? m : { ...m, id };
  });
  const db = await ctx.server.createDatabase();
  const runner = runnerFor(ctx, db);
  try {
    await runner.open();
    ctx.emit({
      kind: 'replay',
      set: ctx.name,
      production: plan.production.length,
      added: plan.added.length,
      base: plan.baseName,
    });
    // What production has and what the branch adds are only applied: many to a round trip.
    const failed = await runner.upMany(all);
    if (failed) {
      const { migration: m, outcome } = failed;
      const error = outcome.error?.message ?? 'failed';
      if (all.indexOf(m) < plan.production.length) {
        return Notes.replayStopped(m.id, plan.baseName, error);
      }
      failedStepFinding(ctx, 'apply', m, 'up', outcome, Messages.replayUpFails(m.id, plan.baseName, error));
      return undefined;
    }
    const production = await snapshotAt(db.url, exclusions);
    const diffs = diffSnapshots(fresh, production);
    if (diffs.length) {
      ctx.finding(
        differenceFinding('apply', diffs, { before: 'in a fresh database', after: 'in production' }, (t) =>
          Messages.replayDiffers(t, plan.baseName),
        ),
      );
    }
    return undefined;
  } finally {
    await runner.close();
    await db.drop().catch(() => {});
  }
}

/**
 * What production runs: the base's migrations as the base has them (an accepted edit as this branch
 * has it, an accepted deletion not at all), then this branch's new ones and changed repeatables.
 */
export function replayPlan(
  ctx: SetContext,
  base: LoadedSet,
  head: LoadedSet,
  comparison: ReturnType<typeof compareHistories>,
  baseName: string,
): ReplayPlan {
  const accepted = (id: string) =>
    ctx.accepted.some((a) => accepts(a, { check: 'ordering', migration: id, set: ctx.name }));
  const headByKey = new Map(head.migrations.filter((m) => !m.repeatable).map((m) => [m.key, m]));
  const production: Migration[] = [];
  for (const m of base.migrations) {
    const now = m.repeatable ? undefined : headByKey.get(m.key);
    if (!m.repeatable && !now && accepted(m.id)) continue;
    if (now && comparison.edited.includes(m.key) && (accepted(now.id) || accepted(m.id)))
      production.push(now);
    else production.push(m);
  }
  const addedIds = new Set(comparison.added.map((e) => e.id));
  const baseRepeatables = new Map(base.migrations.filter((m) => m.repeatable).map((m) => [m.id, m.source]));
  const added = head.migrations.filter(
    (m) => addedIds.has(m.id) || (m.repeatable && !sameText(baseRepeatables.get(m.id) ?? '', m.source)),
  );
  return { production, added, baseName };
}
