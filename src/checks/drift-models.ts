import { type Exclusions, snapshotAt } from '../catalog/tracker.js';
import { differenceFinding, Messages, Notes } from '../core/messages.js';
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
        message: Messages.modelsCommandFailed(
          command,
          result.timedOut ? undefined : result.code,
          ctx.stepTimeoutMs,
        ),
        detail: result.output.trim() || undefined,
      });
      return undefined;
    }
    const models = await snapshotAt(db.url, exclusions);
    const diffs = diffSnapshots(head, models);
    if (diffs.length) {
      ctx.finding(
        differenceFinding(
          'drift-models',
          diffs,
          { before: 'after all migrations', after: 'in the models' },
          Messages.modelsDiffer,
        ),
      );
    }
    return Notes.modelsBuilt(Object.keys(models).length, ctx.now() - started);
  } finally {
    await db.drop().catch(() => {});
  }
}
