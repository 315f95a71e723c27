import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { messageOf } from '../core/errors.js';
import { differenceFinding, Messages, Notes } from '../core/messages.js';
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
    if (old === text) return Notes.snapshotUpToDate(shown);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
    return Notes.snapshotWritten(shown, Object.keys(head).length);
  }
  let committed: string;
  try {
    committed = await readFile(file, 'utf8');
  } catch {
    ctx.finding({
      check: 'drift-snapshot',
      severity: 'error',
      file: shown,
      message: Messages.snapshotMissing(shown),
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
      message: Messages.snapshotUnreadable(shown, messageOf(error).split('\n')[0] ?? ''),
    });
    return undefined;
  }
  const diffs = diffSnapshots(parsed, byTitle(head));
  if (!diffs.length) {
    // Same objects, other text (an older layout, hand edits): not a schema difference, but say so.
    return Notes.snapshotOtherLayout(shown);
  }
  ctx.finding(
    differenceFinding(
      'drift-snapshot',
      diffs,
      { before: 'in the snapshot file', after: 'after all migrations' },
      (text) => Messages.snapshotDiffers(shown, text),
      { file: shown },
    ),
  );
  return undefined;
}
