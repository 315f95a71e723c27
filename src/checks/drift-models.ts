import pg from 'pg';
import { type Exclusions, readSnapshot } from '../catalog/tracker.js';
import { formatDuration } from '../core/format.js';
import { differenceFinding } from '../core/messages.js';
import { diffSnapshots, type SchemaSnapshot } from '../core/schema.js';
import { pgEnv, runCommand } from '../shell.js';
import type { SetContext } from './context.js';

/**
 * drift-models: the schema the project's models build (models-command, run against an empty scratch
 * database given as DATABASE_URL / PG*) must equal the schema after every migration.
 */
export async function checkModels(
  ctx: SetContext,
  head: SchemaSnapshot,
  exclusions: Exclusions,
): Promise<string | undefined> {
  const command = ctx.modelsCommand;
  if (!command) return undefined;
  const db = await ctx.server.createDatabase();
  try {
    const started = ctx.now();
    const result = await runCommand(command, {
      cwd: ctx.workingDirectory,
      env: { ...ctx.env, ...pgEnv(db.url) },
      timeoutMs: ctx.stepTimeoutMs,
    });
    if (result.code !== 0) {
      ctx.finding({
        check: 'drift-models',
        severity: 'error',
        message: `models-command \`${command}\` ${result.timedOut ? `did not finish within the step timeout of ${formatDuration(ctx.stepTimeoutMs)}` : `failed with exit code ${result.code}`}, so the models' schema could not be compared. It must build the schema into the database given as DATABASE_URL and exit 0.`,
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
      ctx.finding(
        differenceFinding(
          'drift-models',
          diffs,
          { before: 'after all migrations', after: 'in the models' },
          (text) =>
            `The models declare another schema than the migrations build: ${text}. A model changed without a migration (or a migration without its model). Add the missing migration, or change the models back.`,
        ),
      );
    }
    return `models-command built ${Object.keys(models).length} objects in ${formatDuration(ctx.now() - started)}.`;
  } finally {
    await db.drop().catch(() => {});
  }
}
