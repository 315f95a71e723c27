import { describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { installLockTrace, lockTraceRider, loggedLocks } from '../src/catalog/locks.js';
import { CatalogTracker, defaultExclusions } from '../src/catalog/tracker.js';
import { type StepTrace, stepTrace } from '../src/core/locks.js';
import { useTestServer } from './helpers/postgres.js';

// The trace itself, below the locks check: what the triggers log in a migration's session and what
// a catalog refresh takes, on a real server.

const server = useTestServer();

async function open(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** A database with `orders` in it, the triggers installed, a migration session and a catalog session. */
async function traced(): Promise<{
  migration: pg.Client;
  take: (tracing?: boolean) => Promise<StepTrace>;
  close: () => Promise<void>;
}> {
  const db = await server.createDatabase();
  const migration = await open(db.url);
  const catalog = await open(db.url);
  await migration.query('CREATE TABLE orders (id bigint PRIMARY KEY, total numeric)');
  const tracker = await CatalogTracker.open(catalog, defaultExclusions());
  expect(await installLockTrace(catalog, false)).toBe(true);
  return {
    migration,
    take: async (tracing) =>
      stepTrace(loggedLocks(await tracker.refresh(catalog, lockTraceRider(true, tracing))), []),
    close: async () => {
      await migration.end();
      await catalog.end();
      await db.drop();
    },
  };
}

describe('the lock trace', () => {
  test('a step logs its strong locks on the tables that were there, not on the ones it creates', async () => {
    const t = await traced();
    try {
      await t.migration.query(
        'BEGIN; CREATE TABLE items (id int PRIMARY KEY, order_id bigint REFERENCES orders (id)); CREATE INDEX ON items (order_id); ALTER TABLE orders ADD COLUMN note text; COMMIT',
      );
      const trace = await t.take();
      expect(trace.locks.map((l) => [l.table, l.mode])).toEqual([
        ['public.orders', 'AccessExclusiveLock'],
        ['public.orders', 'ShareRowExclusiveLock'],
      ]);
      // Nothing is taken twice.
      expect(await t.take()).toEqual({ locks: [], rewrites: [] });
    } finally {
      await t.close();
    }
  });

  test('switched off, a step logs nothing; switched on again, the next one does, and a rewrite', async () => {
    const t = await traced();
    try {
      await t.take(false);
      await t.migration.query('ALTER TABLE orders ADD COLUMN a int');
      expect(await t.take(true)).toEqual({ locks: [], rewrites: [] });
      await t.migration.query('ALTER TABLE orders ALTER COLUMN total TYPE text');
      const trace = await t.take();
      expect(trace.locks.map((l) => l.mode)).toContain('AccessExclusiveLock');
      expect(trace.rewrites).toEqual([{ table: 'public.orders', reason: 4 }]);
    } finally {
      await t.close();
    }
  });

  test('CREATE INDEX CONCURRENTLY, outside a transaction, is logged with the lock it held for the build', async () => {
    const t = await traced();
    try {
      await t.migration.query('CREATE INDEX CONCURRENTLY orders_total_idx ON orders (total)');
      expect((await t.take()).locks.map((l) => [l.table, l.mode])).toEqual([
        ['public.orders', 'ShareUpdateExclusiveLock'],
      ]);
    } finally {
      await t.close();
    }
  });
});
