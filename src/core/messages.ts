import type { CheckId, Finding, NewFinding } from './findings.js';
import { formatDuration, plural } from './format.js';
import { Inputs } from './inputs.js';
import { describeDifference, type SchemaDifference } from './schema.js';

/** At most this many differences in a message; all of them go to the detail. */
const Shown = 5;

/** Differences as message text (first few) and detail (all), with the two sides named. */
export function differenceText(
  diffs: SchemaDifference[],
  sides: { before: string; after: string },
): { text: string; detail?: string } {
  const lines = diffs.flatMap((d) => describeDifference(d, sides).split('\n'));
  const shown = lines.slice(0, Shown).join('; ');
  if (lines.length <= Shown) return { text: shown };
  return {
    text: `${shown}; and ${plural(lines.length - Shown, 'more difference')}`,
    detail: lines.join('\n'),
  };
}

/** One finding for a list of schema differences: a warning only when every difference is one. */
export function differenceFinding(
  check: CheckId,
  diffs: SchemaDifference[],
  sides: { before: string; after: string },
  message: (text: string) => string,
  where: Pick<Finding, 'migration' | 'file'> = {},
): NewFinding {
  const { text, detail } = differenceText(diffs, sides);
  return {
    check,
    severity: diffs.every((d) => d.severity === 'warning') ? 'warning' : 'error',
    ...where,
    message: message(text),
    ...(detail ? { detail } : {}),
  };
}

export const Messages = {
  downFailed: (id: string, error: string) =>
    `\`${id}\` (down) failed: ${error}. A rollback of this release would fail here. Fix the down step.`,
  downDiffers: (id: string, text: string) =>
    `\`${id}\` (down) does not restore the schema from before its up step: ${text}. A rollback of this release would leave the schema different from before it. Make the down step undo exactly what the up step does.`,
  downColumnOrder: (id: string, text: string) =>
    `\`${id}\` (down) restores a column at another position: ${text}. \`SELECT *\` and \`COPY\` without a column list now see another order. Recreate the table in its original column order if that matters, or accept this warning.`,
  reupFailed: (id: string, error: string) =>
    `\`${id}\` (up, run again after its down) failed: ${error}. Its down step leaves behind something its up step needs to create, so the migration cannot be applied again after a rollback. Make the down step drop it.`,
  reupDiffers: (id: string, text: string) =>
    `\`${id}\` (up, run again after its down) does not reproduce the schema of its first run: ${text}. Applying it again after a rollback gives another schema than the first time. Make the down step undo exactly what the up step does.`,
  downLosesRows: (id: string, lost: string[]) =>
    `\`${id}\` (down) loses rows that existed before its up step: ${lost.join(', ')}. A rollback of this release would lose that data. Make the down step keep (or restore) the rows its up step did not add.`,
  seedFailed: (after: string, error: string) =>
    `The seed data, applied after \`${after}\`, failed: ${error}. The checks after it ran without those rows. Make the seed fit the schema as it is after \`${after}\`.`,
  noDown: (id: string, why: string) =>
    `\`${id}\` has no down step (${why}), and ${Inputs.RequireDown} is on: this release could not be rolled back past it. Add a down step, or turn ${Inputs.RequireDown} off for histories that keep irreversible migrations.`,
  upFailed: (id: string, error: string, timedOut: boolean, rest: number) =>
    `\`${id}\` (up) ${timedOut ? '' : 'failed: '}${error}. A deploy of this branch stops here${
      rest === 0
        ? ''
        : rest === 1
          ? ' and the migration after it never runs'
          : ` and the ${rest} migrations after it never run`
    }. Fix this step and run the check again.`,
  rollbackFailed: (id: string, error: string) =>
    `\`${id}\` (down) failed while rolling back everything from the newest migration: ${error}. An incident rollback past this migration would fail here. Fix the down step.`,
  orphanAssertion: (file: string, id: string) =>
    `'${file}' is an assertion for \`${id}\`, which is not a migration in this set, so it never runs. Rename it after the migration it checks (a typo?), or delete it if that migration is gone.`,
  replayUpFails: (id: string, base: string, error: string) =>
    `\`${id}\` (up) fails on the schema production has (the migrations on ${base}, then this branch's new ones before it): ${error}. A deploy of this branch would stop here, although the whole history applies on an empty database. Make it work on top of what ${base} has; the ordering findings may say why it does not.`,
  replayDiffers: (text: string, base: string) =>
    `Production ends with another schema than a fresh database: ${text}. Production ran the migrations as they are on ${base} and runs this branch's new ones on top; a fresh database (CI, a new environment, a restore) runs this branch's whole history. An edited or out-of-order migration makes them differ; the ordering findings say which. Make both paths end the same.`,
  snapshotMissing: (file: string) =>
    `The snapshot file \`${file}\` does not exist. Run pg-migrate-verify with --update-snapshot (input ${Inputs.UpdateSnapshot}: true) and commit the file.`,
  snapshotUnreadable: (file: string, error: string) =>
    `The snapshot file \`${file}\` cannot be read (${error}). Regenerate it with --update-snapshot and commit it.`,
  snapshotDiffers: (file: string, text: string) =>
    `The schema after all migrations differs from the committed snapshot \`${file}\`: ${text}. Either a migration changed the schema and the snapshot was not regenerated, or the snapshot was edited. Run with --update-snapshot, review the file's diff, and commit it.`,
  /** `exitCode` undefined: it timed out. */
  modelsCommandFailed: (command: string, exitCode: number | null | undefined, timeoutMs: number) =>
    `${Inputs.ModelsCommand} \`${command}\` ${exitCode === undefined ? `did not finish within the step timeout of ${formatDuration(timeoutMs)}` : `failed with exit code ${exitCode}`}, so the models' schema could not be compared. It must build the schema into the database given as DATABASE_URL and exit 0.`,
  modelsDiffer: (text: string) =>
    `The models declare another schema than the migrations build: ${text}. A model changed without a migration (or a migration without its model). Add the missing migration, or change the models back.`,
  targetDrift: (text: string) =>
    `The target's schema differs from the schema this repository's history gives at the version the target has applied: ${text}. Something changed the target outside the migrations (a hotfix by hand, a migration from another branch), or a migration was edited after it ran there. Deploying on top may fail or leave the two apart for good. Put the change into a migration (or undo it on the target) before deploying.`,
  targetHistoryFails: (id: string, error: string) =>
    `\`${id}\` is applied on the target, but this repository's history up to it does not apply on an empty database (${error}), so the target's schema could not be compared. Fix the history; the apply findings of a normal run say where.`,
  /** `from`: the first migration rolled back, when the ones before it were only applied. */
  rollbackLeftovers: (text: string, from?: string) =>
    `Rolling back every migration from the newest to ${from ? `\`${from}\` does not return to the schema before it` : 'the first does not return to the empty database'}: ${text}. Some down step does not undo its up step; the reversibility findings name which.`,
  sharedUpFailed: (id: string, base: string, error: string) =>
    `\`${id}\` (up) fails on the database the migrations before it leave: ${error}. It is one of the migrations this branch shares unchanged with ${base}, which \`scope: changed\` applies without checking, so none of this branch's own migrations could be checked. The history on ${base} is broken here too: fix it there (or run with \`scope: all\` to see every finding).`,
};

/** The lines of a set's notes: worth telling, not findings. */
export const Notes = {
  locksNotTraced:
    'locks not checked: tracing the locks a step takes needs event triggers, which the database user may not create (use a superuser on the scratch server).',
  fullCatalogReads:
    'The database user may not create event triggers, so every step was followed by a full catalog read (slower, same result).',
  cannotRestore: (id: string) =>
    `After \`${id}\` the database could not be put back in its state after the up step, so the migrations after it were not checked.`,
  rollbackNotRun: (why: string) => `rollback-all was not run: ${why}.`,
  rollbackStopped: (id: string, why: string) =>
    `rollback-all stopped at \`${id}\`: it has no down step (${why}).`,
  replayNotRun: "Two-phase replay not run: this branch's own history does not apply from empty.",
  replayStopped: (id: string, base: string, error: string) =>
    `Two-phase replay stopped: \`${id}\` as it is on ${base} fails there (${error}), so what production has could not be rebuilt.`,
  driftNotChecked: (checks: readonly string[]) =>
    `${checks.join(' and ')} not checked: not every migration applied.`,
  snapshotUpToDate: (file: string) => `The snapshot \`${file}\` is up to date.`,
  snapshotWritten: (file: string, objects: number) =>
    `Wrote the snapshot \`${file}\` (${objects} objects): commit it.`,
  snapshotOtherLayout: (file: string) =>
    `The snapshot \`${file}\` describes the same schema in another layout; regenerate it with --update-snapshot.`,
  modelsBuilt: (objects: number, ms: number) =>
    `${Inputs.ModelsCommand} built ${objects} objects in ${formatDuration(ms)}.`,
};
