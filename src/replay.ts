import pg from 'pg';
import { type Exclusions, readSnapshot } from './catalog/tracker.js';
import type { NewFinding } from './core/findings.js';
import { plural } from './core/format.js';
import { differenceFinding } from './core/messages.js';
import { diffSnapshots, type SchemaSnapshot } from './core/schema.js';
import { Runner } from './migrations/runner.js';
import type { Migration } from './migrations/types.js';
import { cancelQueries } from './postgres/databases.js';
import type { StartedPostgres } from './postgres/types.js';
import type { Settings } from './settings.js';
import type { Edges } from './verify.js';

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
 * schema this branch's history builds from empty (`fresh`).
 */
export async function replayOnBase(
  plan: ReplayPlan,
  fresh: SchemaSnapshot,
  exclusions: Exclusions,
  server: StartedPostgres,
  settings: Settings,
  edges: Edges,
  finding: (f: NewFinding) => void,
): Promise<string | undefined> {
  // Each step needs a unique name in the runner, even when a base migration and a new one share an id.
  const seen = new Set<string>();
  const all = [...plan.production, ...plan.added].map((m) => {
    let id = m.id;
    for (let n = 2; seen.has(id); n++) id = `${m.id}#${n}`;
    seen.add(id);
    return id === m.id ? m : { ...m, id };
  });
  const db = await server.createDatabase();
  const runner = new Runner(all, {
    databaseUrl: db.url,
    timeoutMs: settings.stepTimeoutMs,
    cancel: () => cancelQueries(server.adminUrl, db.name),
    health: () => server.health(),
    serverName: `PostgreSQL ${server.version} (${server.provider})`,
    now: edges.now,
  });
  try {
    await runner.open();
    edges.progress(
      `  two-phase replay: ${plural(plan.production.length, 'migration')} as on ${plan.baseName}, then ${plural(plan.added.length, 'new migration')}`,
    );
    for (const [i, m] of all.entries()) {
      const outcome = await runner.up(m);
      if (outcome.ok) continue;
      const error = outcome.error?.message ?? 'failed';
      if (i < plan.production.length) {
        return `Two-phase replay stopped: \`${m.id}\` as it is on ${plan.baseName} fails there (${error}), so what production has could not be rebuilt.`;
      }
      finding({
        check: 'apply',
        severity: 'error',
        migration: m.id,
        file: outcome.error?.file ?? m.up.file,
        line: outcome.error?.line,
        message: `\`${m.id}\` (up) fails on the schema production has (the migrations on ${plan.baseName}, then this branch's new ones before it): ${error}. A deploy of this branch would stop here, although the whole history applies on an empty database. Make it work on top of what ${plan.baseName} has; the ordering findings may say why it does not.`,
        detail: outcome.error?.detail,
      });
      return undefined;
    }
    const client = new pg.Client({ connectionString: db.url });
    client.on('error', () => {});
    await client.connect();
    let production: SchemaSnapshot;
    try {
      production = await readSnapshot(client, exclusions);
    } finally {
      await client.end().catch(() => {});
    }
    const diffs = diffSnapshots(fresh, production);
    if (diffs.length) {
      finding(
        differenceFinding(
          'apply',
          diffs,
          { before: 'in a fresh database', after: 'in production' },
          (t) =>
            `Production ends with another schema than a fresh database: ${t}. Production ran the migrations as they are on ${plan.baseName} and runs this branch's new ones on top; a fresh database (CI, a new environment, a restore) runs this branch's whole history. An edited or out-of-order migration makes them differ; the ordering findings say which. Make both paths end the same.`,
        ),
      );
    }
    return undefined;
  } finally {
    await runner.close();
    await db.drop().catch(() => {});
  }
}
