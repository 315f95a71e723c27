import type { CheckId, Finding, NewFinding } from './findings.js';
import { plural } from './format.js';
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
  rollbackLeftovers: (text: string) =>
    `Rolling back every migration from the newest to the first does not return to the empty database: ${text}. Some down step does not undo its up step; the reversibility findings name which.`,
};
