import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { messageOf } from '../core/errors.js';
import { Inputs } from '../core/inputs.js';
import { differenceFinding } from '../core/messages.js';
import { diffSnapshots, type SchemaSnapshot } from '../core/schema.js';
import { byTitle, parseSnapshotFile, renderSnapshotFile } from '../core/snapshot-file.js';
import type { SetContext } from './context.js';

/**
 * drift-snapshot: the schema after every migration must equal the committed snapshot file; with
 * update-snapshot, the file is (re)written instead. Returns a note for the report, if any.
 */
export async function checkSnapshotFile(ctx: SetContext, head: SchemaSnapshot): Promise<string | undefined> {
  const file = ctx.snapshotFile;
  if (!file) return undefined;
  const shown = path.relative(ctx.workingDirectory, file) || file;
  const text = renderSnapshotFile(head);
  if (ctx.updateSnapshot) {
    const old = await readFile(file, 'utf8').catch(() => undefined);
    if (old === text) return `The snapshot \`${shown}\` is up to date.`;
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
    return `Wrote the snapshot \`${shown}\` (${Object.keys(head).length} objects): commit it.`;
  }
  let committed: string;
  try {
    committed = await readFile(file, 'utf8');
  } catch {
    ctx.finding({
      check: 'drift-snapshot',
      severity: 'error',
      file: shown,
      message: `The snapshot file \`${shown}\` does not exist. Run pg-migrate-verify with --update-snapshot (input ${Inputs.UpdateSnapshot}: true) and commit the file.`,
    });
    return undefined;
  }
  if (committed === text) return undefined;
  let parsed: SchemaSnapshot;
  try {
    parsed = parseSnapshotFile(committed);
  } catch (error) {
    ctx.finding({
      check: 'drift-snapshot',
      severity: 'error',
      file: shown,
      message: `The snapshot file \`${shown}\` cannot be read (${messageOf(error).split('\n')[0]}). Regenerate it with --update-snapshot and commit it.`,
    });
    return undefined;
  }
  const diffs = diffSnapshots(parsed, byTitle(head));
  if (!diffs.length) {
    // Same objects, other text (an older layout, hand edits): not a schema difference, but say so.
    return `The snapshot \`${shown}\` describes the same schema in another layout; regenerate it with --update-snapshot.`;
  }
  ctx.finding(
    differenceFinding(
      'drift-snapshot',
      diffs,
      { before: 'in the snapshot file', after: 'after all migrations' },
      (text) =>
        `The schema after all migrations differs from the committed snapshot \`${shown}\`: ${text}. Either a migration changed the schema and the snapshot was not regenerated, or the snapshot was edited. Run with --update-snapshot, review the file's diff, and commit it.`,
      { file: shown },
    ),
  );
  return undefined;
}
