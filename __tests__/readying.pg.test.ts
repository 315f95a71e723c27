import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { defaultExclusions } from '../src/catalog/tracker.js';
import { Readying } from '../src/checks/workspace.js';
import { BookkeepingSchema } from '../src/core/bookkeeping.js';
import { type Edges, verify } from '../src/verify.js';
import { edgesOn, settingsFor, useTestServer } from './helpers/postgres.js';

const server = useTestServer();

async function sessions(url: string, count: number): Promise<pg.Client[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {});
      await client.connect();
      return client;
    }),
  );
}

/** Waits until the session `pid` waits for a lock. */
async function waitsForLock(client: pg.Client, pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await client.query<{ waiting: boolean }>(
      "SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1",
      [pid],
    );
    if (rows[0]?.waiting) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`session ${pid} never waited for a lock`);
}

describe('the catalog session readied while the migrations before a walk apply', () => {
  test('a replay that ends while the install still runs cancels nothing of it, and no warming read starts after', async () => {
    const db = await server.createDatabase();
    const [catalog, migrations, blocker] = (await sessions(db.url, 3)) as [pg.Client, pg.Client, pg.Client];
    // The install's ANALYZE of the log waits for this lock: the install is still running when the
    // replay ends.
    await blocker.query(
      `CREATE SCHEMA ${BookkeepingSchema}; CREATE UNLOGGED TABLE ${BookkeepingSchema}.ddl_log (classid text, objid oid, dropped boolean, xid bigint DEFAULT txid_current())`,
    );
    await blocker.query(`BEGIN; LOCK TABLE ${BookkeepingSchema}.ddl_log IN ACCESS EXCLUSIVE MODE`);
    const pid = (await catalog.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
    let clock = 0;
    const readying = new Readying(catalog, Promise.resolve(), defaultExclusions(), false, 2, () => clock);
    // Half the replay in 250 ms: the other half leaves room for a warming read, which waits for the install.
    clock = 250;
    readying.applied();
    await waitsForLock(migrations, pid);
    const finishing = readying.finish(migrations);
    await new Promise((r) => setTimeout(r, 100));
    await blocker.query('COMMIT');
    await finishing;
    expect(await readying.installed).toBe('incremental');
    // No warming read ran: the take's statements were the last the session ran.
    const last = await migrations.query<{ query: string }>(
      'SELECT query FROM pg_stat_activity WHERE pid = $1',
      [pid],
    );
    expect(last.rows[0]?.query).toMatch(/take\('prints'/);
    for (const client of [catalog, migrations, blocker]) await client.end();
  });
});

describe('warming reads', () => {
  test.each([
    ['alone, with time for one before the end: a warming read runs', 2, true],
    ['beside other ranges: none runs', 0, false],
  ] as const)('%s', async (_what, total, warms) => {
    const db = await server.createDatabase();
    const [catalog, migrations] = (await sessions(db.url, 2)) as [pg.Client, pg.Client];
    const pid = (await catalog.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
    let clock = 0;
    const readying = new Readying(catalog, Promise.resolve(), defaultExclusions(), false, total, () => clock);
    await readying.installed;
    // Half of two migrations in 250 ms: the other half leaves room for one read (guessed at 150 ms).
    clock = 250;
    readying.applied();
    // The read (if one started) ends before the replay does here.
    await new Promise((r) => setTimeout(r, 300));
    await readying.finish(migrations);
    const { rows } = await migrations.query<{ query: string }>(
      'SELECT query FROM pg_stat_activity WHERE pid = $1',
      [pid],
    );
    expect(/lock_timeout/.test(rows[0]?.query ?? '')).toBe(warms);
    for (const client of [catalog, migrations]) await client.end();
  });
});

describe('the first scratch database, made while the sets load', () => {
  test.each([
    [
      'a set that checks',
      { '0001_t.up.sql': 'CREATE TABLE t (id int);\n', '0001_t.down.sql': 'DROP TABLE t;\n' },
      'passed',
    ],
    [
      'input that does not load (no check takes the database)',
      { 'README.md': 'no migrations here\n' },
      'error',
    ],
  ] as const)('%s: every database made is dropped by the end of the run', async (_what, files, result) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgmv-spare-'));
    try {
      for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
      // Every database the run asks for, and whether it dropped it.
      const made: Promise<{ name: string; dropped: boolean }>[] = [];
      const edges = edgesOn(server);
      const counting: Edges = {
        ...edges,
        startPostgres: async (options) => {
          const given = await edges.startPostgres(options);
          return {
            ...given,
            createDatabase: (o) => {
              const db = given.createDatabase(o);
              const seen = db.then((d) => ({ name: d.name, dropped: false }));
              made.push(seen);
              return db.then((d) => ({
                ...d,
                drop: async () => {
                  (await seen).dropped = true;
                  await d.drop();
                },
              }));
            },
          };
        },
      };
      const report = await verify(await settingsFor(dir), counting);
      expect(report.result).toBe(result);
      const all = await Promise.all(made);
      expect(all.length).toBeGreaterThan(0);
      expect(all.filter((d) => !d.dropped)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
