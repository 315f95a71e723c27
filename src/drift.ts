import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { type Exclusions, readSnapshot } from './catalog/tracker.js';
import { pgEnv, runCommand } from './command.js';
import { messageOf } from './core/errors.js';
import type { NewFinding } from './core/findings.js';
import { formatDuration } from './core/format.js';
import { Inputs } from './core/inputs.js';
import { differenceFinding } from './core/messages.js';
import { diffSnapshots, type SchemaSnapshot } from './core/schema.js';
import { byTitle, parseSnapshotFile, renderSnapshotFile } from './core/snapshot-file.js';
import type { StartedPostgres } from './postgres/types.js';
import type { SetSettings, Settings } from './settings.js';

/**
 * drift-snapshot: the schema after every migration must equal the committed snapshot file; with
 * update-snapshot, the file is (re)written instead. Returns a note for the report, if any.
 */
export async function checkSnapshotFile(
  set: SetSettings,
  head: SchemaSnapshot,
  settings: Settings,
  finding: (f: NewFinding) => void,
): Promise<string | undefined> {
  const file = set.snapshotFile;
  if (!file) return undefined;
  const shown = path.relative(settings.workingDirectory, file) || file;
  const text = renderSnapshotFile(head);
  if (settings.updateSnapshot) {
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
    finding({
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
    finding({
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
  finding(
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

/**
 * drift-models: the schema the project's models build (models-command, run against an empty scratch
 * database given as DATABASE_URL / PG*) must equal the schema after every migration.
 */
export async function checkModels(
  set: SetSettings,
  head: SchemaSnapshot,
  server: StartedPostgres,
  settings: Settings,
  exclusions: Exclusions,
  env: NodeJS.ProcessEnv,
  finding: (f: NewFinding) => void,
): Promise<string | undefined> {
  const command = set.modelsCommand;
  if (!command) return undefined;
  const db = await server.createDatabase();
  try {
    const started = performance.now();
    const result = await runCommand(command, {
      cwd: settings.workingDirectory,
      env: { ...env, ...pgEnv(db.url) },
      timeoutMs: settings.stepTimeoutMs,
    });
    if (result.code !== 0) {
      finding({
        check: 'drift-models',
        severity: 'error',
        message: `models-command \`${command}\` ${result.timedOut ? `did not finish within the step timeout of ${formatDuration(settings.stepTimeoutMs)}` : `failed with exit code ${result.code}`}, so the models' schema could not be compared. It must build the schema into the database given as DATABASE_URL and exit 0.`,
        detail: result.output.trim() || undefined,
      });
      return undefined;
    }
    const client = new pg.Client({ connectionString: db.url });
    client.on('error', () => {});
    await client.connect();
    let models: SchemaSnapshot;
    try {
      models = await readSnapshot(client, exclusions);
    } finally {
      await client.end().catch(() => {});
    }
    const diffs = diffSnapshots(head, models);
    if (diffs.length) {
      finding(
        differenceFinding(
          'drift-models',
          diffs,
          { before: 'after all migrations', after: 'in the models' },
          (text) =>
            `The models declare another schema than the migrations build: ${text}. A model changed without a migration (or a migration without its model). Add the missing migration, or change the models back.`,
        ),
      );
    }
    return `models-command built ${Object.keys(models).length} objects in ${formatDuration(performance.now() - started)}.`;
  } finally {
    await db.drop().catch(() => {});
  }
}
