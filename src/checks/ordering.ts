import { compareHistories, type HistoryComparison, historyFindings, sameText } from '../core/ordering.js';
import { historyOf } from '../migrations/index.js';
import type { LoadedSet } from '../migrations/types.js';
import type { SetContext } from './context.js';

/** A migration set as the base branch has it. */
export interface BaseSet {
  ref: string;
  commit: string;
  /** Undefined when the base's copy could not be read (the note says why). */
  loaded?: LoadedSet;
  note?: string;
}

/** `main (1a2b3c4)`: the base branch in messages. */
export function baseName(base: BaseSet): string {
  return `${base.ref} (${base.commit.slice(0, 7)})`;
}

/**
 * The ordering check: the folder's own problems (mis-named files), the history on its own
 * (duplicate versions, names that sort otherwise than versions), and against the base branch
 * (out of order, edited, renamed, deleted). Returns the comparison with the base, which the
 * two-phase replay also needs, whether or not the check runs.
 */
export function checkOrdering(
  ctx: SetContext,
  loaded: LoadedSet,
  base: BaseSet | undefined,
): HistoryComparison | undefined {
  const ordering = ctx.checks.has('ordering');
  if (ordering) {
    for (const f of loaded.findings) ctx.finding(f);
    for (const f of historyFindings(historyOf(loaded), loaded.rules)) ctx.finding(f);
  }
  const comparison = base?.loaded
    ? compareHistories(historyOf(base.loaded), historyOf(loaded), loaded.rules, baseName(base))
    : undefined;
  if (comparison && ordering) for (const f of comparison.findings) ctx.finding(f);
  return comparison;
}

/**
 * How many migrations, from the first, this branch's history shares with the base's: the same
 * migrations (key and text) in the same order. Production has run them as they are, so with
 * `scope: changed` they are only applied; the checks start at the first one the branch adds, edits,
 * removes or moves.
 */
export function sharedPrefix(base: LoadedSet, head: LoadedSet): number {
  const n = Math.min(base.migrations.length, head.migrations.length);
  for (let i = 0; i < n; i++) {
    const was = base.migrations[i];
    const now = head.migrations[i];
    if (!was || !now || was.key !== now.key || was.id !== now.id || !sameText(was.source, now.source))
      return i;
  }
  return n;
}
