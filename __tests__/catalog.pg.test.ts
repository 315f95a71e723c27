import { describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { generateHistory } from '../bench/generate.js';
import { CatalogTracker, defaultExclusions, readSnapshot, type Taken } from '../src/catalog/tracker.js';
import { diffSnapshots } from '../src/core/schema.js';
import { useTestServer } from './helpers/postgres.js';

const server = useTestServer();

async function connect(): Promise<pg.Client> {
  const db = await server.createDatabase();
  const client = new pg.Client({ connectionString: db.url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Statements that touch every kind of object, including renames whose effects spread to others. */
const Ddl = [
  "CREATE TYPE mood AS ENUM ('happy', 'sad')",
  'CREATE DOMAIN posint AS integer CHECK (VALUE > 0)',
  'CREATE TYPE pair AS (a int, b text)',
  'CREATE TYPE floatrange AS RANGE (subtype = float8, subtype_diff = float8mi)',
  'CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, m mood, n posint DEFAULT 1)',
  'CREATE TABLE orders (id int PRIMARY KEY, user_id bigint REFERENCES users (id), CHECK (id > 0))',
  "COMMENT ON COLUMN users.email IS 'login'",
  'CREATE INDEX users_lower ON users (lower(email)) WHERE id > 10',
  'ALTER TABLE users SET (autovacuum_vacuum_scale_factor = 0.01)',
  'CREATE VIEW v AS SELECT id, email FROM users',
  'CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql IMMUTABLE RETURN a + 1',
  'CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$',
  'CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION trg()',
  'ALTER TABLE users ENABLE ROW LEVEL SECURITY',
  'CREATE POLICY p ON users USING (id > 0)',
  'CREATE SCHEMA app',
  'CREATE SEQUENCE app.s INCREMENT 5',
  'ALTER TABLE users RENAME TO accounts',
  'ALTER TYPE mood RENAME TO feeling',
  "ALTER TYPE feeling ADD VALUE 'meh'",
  'ALTER TABLE accounts ADD COLUMN note text',
  'ALTER TABLE accounts ALTER COLUMN note TYPE varchar(200)',
  'ALTER SEQUENCE app.s INCREMENT 7',
  'ALTER FUNCTION f(int) STABLE',
  'DROP INDEX users_lower',
  'ALTER TABLE accounts DROP COLUMN n',
  'DROP POLICY p ON accounts',
  'DROP TRIGGER t ON accounts',
  'ALTER SCHEMA app RENAME TO application',
  'CREATE EXTENSION IF NOT EXISTS pgcrypto',
  'CREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id)',
  'ALTER TABLE accounts RESET (autovacuum_vacuum_scale_factor)',
  'ALTER TABLE orders RENAME COLUMN user_id TO account_id',
  // A dropped table takes its whole family with it (nothing to read again); one dropped with
  // CASCADE changes the table whose foreign key pointed at it.
  'CREATE TABLE gone (id serial PRIMARY KEY, x int UNIQUE)',
  'CREATE INDEX gone_x ON gone (x)',
  'DROP TABLE gone',
  'CREATE TABLE parent2 (id int PRIMARY KEY)',
  'CREATE TABLE child2 (pid int REFERENCES parent2, CONSTRAINT positive CHECK (pid > 0))',
  'DROP TABLE parent2 CASCADE',
  // What is made on a partitioned or inherited table is made on its partitions and children too,
  // and nothing logs them.
  'CREATE TABLE measures (id int, at date) PARTITION BY RANGE (at)',
  "CREATE TABLE measures_2024 PARTITION OF measures FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY RANGE (id)",
  'CREATE TABLE measures_2024_low PARTITION OF measures_2024 FOR VALUES FROM (0) TO (100)',
  'CREATE INDEX measures_at ON measures (at)',
  'ALTER TABLE measures ADD COLUMN v int NOT NULL DEFAULT 0',
  'CREATE TRIGGER measured BEFORE INSERT ON measures FOR EACH ROW EXECUTE FUNCTION trg()',
  'CREATE TABLE base_b (b int)',
  // Parents in their order: a full read gathers them in one go, a step's read table by table.
  'CREATE TABLE special () INHERITS (child2, base_b)',
  'ALTER TABLE child2 ADD COLUMN extra text',
  'DROP INDEX measures_at',
  'DROP TYPE feeling CASCADE',
  'DROP VIEW v',
  'DROP TABLE accounts CASCADE',
  'DROP EXTENSION pgcrypto',
  'DROP SCHEMA application CASCADE',
];

describe('incremental tracking equals a full read after every statement', () => {
  test('every kind of object, renames and cascades included', async () => {
    const client = await connect();
    const tracker = await CatalogTracker.open(client, defaultExclusions());
    expect(tracker.mode).toBe('incremental');
    for (const statement of Ddl) {
      await client.query(statement);
      await tracker.refresh(client);
      const full = await readSnapshot(client, defaultExclusions());
      // Guards against a vacuous pass (both sides empty).
      expect(full['schema:public']?.kind).toBe('schema');
      const missed = diffSnapshots(full, tracker.now()).map(
        (d) => `${d.key} ${d.change} ${JSON.stringify(d.props)}`,
      );
      expect({ statement, missed }).toEqual({ statement, missed: [] });
    }
    await client.end();
  });

  test('a synthetic history, up and down', async () => {
    const client = await connect();
    const tracker = await CatalogTracker.open(client, defaultExclusions());
    const history = generateHistory(60);
    for (const m of history) {
      await client.query(m.up);
      await tracker.refresh(client);
    }
    const head = await readSnapshot(client, defaultExclusions());
    expect(Object.keys(head).filter((k) => k.startsWith('table:')).length).toBeGreaterThan(10);
    expect(diffSnapshots(head, tracker.now())).toEqual([]);
    for (const m of [...history].reverse()) {
      await client.query(m.down);
      await tracker.refresh(client);
    }
    expect(tracker.now()).toEqual(await readSnapshot(client, defaultExclusions()));
    await client.end();
  });

  test('many steps since the last read: read in full, with the prints or without', async () => {
    const client = await connect();
    const tracker = await CatalogTracker.open(client, defaultExclusions());
    // More objects logged than a take looks up one by one (400): it says "many", and the tracker reads everything.
    const history = generateHistory(300);
    await client.query(history.map((m) => m.up).join(';\n'));
    expect(
      Number((await client.query('SELECT count(*) FROM _pg_migrate_verify.ddl_log')).rows[0].count),
    ).toBeGreaterThan(400);
    await tracker.refresh(client);
    expect(diffSnapshots(await readSnapshot(client, defaultExclusions()), tracker.now())).toEqual([]);
    await client.query(
      [...history]
        .reverse()
        .map((m) => m.down)
        .join(';\n'),
    );
    await tracker.refresh(client, undefined, undefined, false);
    expect(diffSnapshots(await readSnapshot(client, defaultExclusions()), tracker.now())).toEqual([]);
    // The log is taken: the next read starts from nothing.
    expect(
      Number((await client.query('SELECT count(*) FROM _pg_migrate_verify.ddl_log')).rows[0].count),
    ).toBe(0);
    await client.end();
  });

  test('steps read together are told apart by transaction, each as its own read gives it; not when they share a root', async () => {
    /** Each step in a transaction of its own; its id, as the event triggers log it. */
    const step = async (client: pg.Client, sql: string) => {
      await client.query('BEGIN');
      await client.query(sql);
      const { rows } = await client.query<{ x: string }>('SELECT txid_current()::text AS x');
      await client.query('COMMIT');
      return rows[0]?.x as string;
    };
    const batches = [
      [
        'CREATE TABLE a (id serial PRIMARY KEY, n text)',
        'CREATE TABLE b (id int PRIMARY KEY)',
        "CREATE TYPE mood AS ENUM ('x')",
      ],
      ['ALTER TABLE a ADD COLUMN m int', 'CREATE INDEX b_i ON b (id)', "COMMENT ON TYPE mood IS 'm'"],
    ];
    const together = await connect();
    const alone = await connect();
    const t1 = await CatalogTracker.open(together, defaultExclusions());
    const t2 = await CatalogTracker.open(alone, defaultExclusions());
    for (const batch of batches) {
      const xids: string[] = [];
      for (const sql of batch) xids.push(await step(together, sql));
      const parts = t1.splitTake(await t1.take(together, t1.takeSql('details')), xids);
      expect(parts).toHaveLength(batch.length);
      for (const [k, sql] of batch.entries()) {
        const m1 = t1.mark();
        expect(t1.absorbAfter(parts?.[k] as Taken)).toBeDefined();
        await step(alone, sql);
        const m2 = t2.mark();
        await t2.refresh(alone);
        // The same objects changed, from the same values to the same values, step by step.
        const changed = t2.changedSince(m2).sort();
        expect(changed.length).toBeGreaterThan(0);
        expect(t1.changedSince(m1).sort()).toEqual(changed);
        expect(t1.at(m1, changed)).toEqual(t2.at(m2, changed));
        expect(t1.now(changed)).toEqual(t2.now(changed));
        t1.release(m1);
        t2.release(m2);
      }
    }
    expect(diffSnapshots(await readSnapshot(together, defaultExclusions()), t1.now())).toEqual([]);
    // Two steps on one table: what the first left is not there to read any more.
    const xids = [
      await step(together, 'ALTER TABLE a ADD COLUMN q int'),
      await step(together, "COMMENT ON COLUMN a.q IS 'q'"),
    ];
    expect(t1.splitTake(await t1.take(together, t1.takeSql('details')), xids)).toBeUndefined();
    await together.end();
    await alone.end();
  });

  test('marks journal the values a step replaced', async () => {
    const client = await connect();
    const tracker = await CatalogTracker.open(client, defaultExclusions());
    await client.query('CREATE TABLE a (id int)');
    await tracker.refresh(client);
    const mark = tracker.mark();
    await client.query('ALTER TABLE a ADD COLUMN b text NOT NULL');
    await tracker.refresh(client);
    const keys = tracker.changedSince(mark);
    expect(keys).toEqual(expect.arrayContaining(['table:public.a', 'column:public.a.b']));
    const diffs = diffSnapshots(tracker.at(mark, keys), tracker.now(keys));
    // The table's column list changed only by the added column: said once, by the column.
    expect(diffs.map((d) => [d.key, d.change])).toEqual([['column:public.a.b', 'added']]);
    tracker.release(mark);
    await client.end();
  });
});

/**
 * A step whose state is known in advance (a down step must give back the schema before its up
 * step) is checked by prints: what the take reads instead of the families. `up` then `down` on
 * `setup`: the prints must say the same, the tracker put back from memory must equal a full read.
 */
async function upThenDown(setup: string[], up: string, down: string) {
  const client = await connect();
  const tracker = await CatalogTracker.open(client, defaultExclusions());
  for (const statement of setup) await client.query(statement);
  await tracker.refresh(client);
  const before = tracker.mark();
  await client.query(up);
  await tracker.refresh(client);
  const keys = tracker.changedSince(before);
  const entries = tracker.entriesAt(before, keys);
  const prints = tracker.printsAt(before);
  tracker.release(before);
  await client.query(down);
  const check = await tracker.checkPrints(client, prints);
  if (check.same) tracker.restore(entries, prints);
  const full = await readSnapshot(client, defaultExclusions());
  const missed = diffSnapshots(full, tracker.now()).map((d) => `${d.key} ${d.change}`);
  await client.end();
  return { same: check.same, missed, keys };
}

describe('prints: a step that must give back a known state is checked without reading the families', () => {
  const Table = 'CREATE TABLE t (id int PRIMARY KEY, name text)';
  test.each([
    [
      'a column added and dropped',
      [Table],
      'ALTER TABLE t ADD COLUMN c int DEFAULT 1 CHECK (c > 0)',
      'ALTER TABLE t DROP COLUMN c',
    ],
    [
      'an index created and dropped (its table known only from earlier reads)',
      [Table],
      'CREATE INDEX ti ON t (lower(name))',
      'DROP INDEX ti',
    ],
    ['a table created and dropped', [Table], 'CREATE TABLE r (id int, tid int REFERENCES t)', 'DROP TABLE r'],
    [
      'a trigger and its function',
      [Table],
      'CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$; CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()',
      'DROP TRIGGER tr ON t; DROP FUNCTION f()',
    ],
    [
      'a comment set and removed',
      [Table],
      "COMMENT ON COLUMN t.name IS 'who'",
      'COMMENT ON COLUMN t.name IS NULL',
    ],
    [
      'a storage parameter set and reset',
      [Table],
      'ALTER TABLE t SET (fillfactor = 70)',
      'ALTER TABLE t RESET (fillfactor)',
    ],
    [
      'a type renamed and renamed back, with a column that names it',
      ["CREATE TYPE mood AS ENUM ('a')", 'CREATE TABLE u (m mood)'],
      'ALTER TYPE mood RENAME TO feeling',
      'ALTER TYPE feeling RENAME TO mood',
    ],
    [
      'a column renamed and renamed back, with an index and a view that name it',
      [Table, 'CREATE INDEX tn ON t (name)', 'CREATE VIEW v AS SELECT name FROM t'],
      'ALTER TABLE t RENAME COLUMN name TO label',
      'ALTER TABLE t RENAME COLUMN label TO name',
    ],
  ])('%s', async (_what, setup, up, down) => {
    const { same, missed, keys } = await upThenDown(setup, up, down);
    // Guards against a vacuous pass: the up step changed something.
    expect(keys.length).toBeGreaterThan(0);
    expect({ same, missed }).toEqual({ same: true, missed: [] });
  });

  test.each([
    ['an index left behind', [Table], 'CREATE INDEX ti ON t (name)', 'SELECT 1'],
    ['a column left behind', [Table], 'ALTER TABLE t ADD COLUMN c int', "COMMENT ON TABLE t IS 'x'"],
    [
      'another table changed',
      [Table, 'CREATE TABLE o (id int)'],
      'ALTER TABLE t ADD COLUMN c int',
      'ALTER TABLE t DROP COLUMN c; ALTER TABLE o ADD COLUMN z int',
    ],
    [
      'an index on another table dropped',
      [Table, 'CREATE TABLE o (id int)', 'CREATE INDEX oi ON o (id)'],
      'CREATE INDEX ti ON t (name)',
      'DROP INDEX ti; DROP INDEX oi',
    ],
    [
      'a table made again (same definition, another table)',
      [Table],
      'DROP TABLE t',
      'CREATE TABLE t (id int PRIMARY KEY, name text)',
    ],
    [
      'a type renamed back to another name',
      ["CREATE TYPE mood AS ENUM ('a')", 'CREATE TABLE u (m mood)'],
      'ALTER TYPE mood RENAME TO feeling',
      'ALTER TYPE feeling RENAME TO humour',
    ],
  ])('%s: not the same, and the families are read', async (_what, setup, up, down) => {
    const { same, missed } = await upThenDown(setup, up, down);
    expect({ same, missed }).toEqual({ same: false, missed: [] });
  });

  test('a take that caught an error changed nothing, and the refresh takes the log again', async () => {
    const client = await connect();
    const tracker = await CatalogTracker.open(client, defaultExclusions());
    await client.query('CREATE TABLE t (id int)');
    const error = { r_t: 'error', r_name: 'as if it failed' } as never;
    await tracker.refresh(client, undefined, { take: [error], rider: [] });
    expect(tracker.now()['table:public.t']?.kind).toBe('table');
    await client.end();
  });
});

describe('full reads', () => {
  /** Every object kind whose deparsing can lock a relation, plus plain ones. */
  const Locking = [
    'CREATE TABLE t (id serial PRIMARY KEY, g int GENERATED ALWAYS AS (id * 2) STORED, s text, CHECK (id > 0))',
    'CREATE INDEX t_lower ON t (lower(s))',
    'CREATE INDEX t_some ON t (s) WHERE id > 5',
    'CREATE TABLE p (id int) PARTITION BY RANGE ((id + 1))',
    'CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)',
    'CREATE VIEW v AS SELECT id, s FROM t',
    'CREATE RULE r AS ON INSERT TO v DO INSTEAD NOTHING',
    'CREATE FUNCTION tf() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$',
    'CREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW WHEN (NEW.id > 1) EXECUTE FUNCTION tf()',
    'CREATE POLICY pol ON t USING (id > 0)',
    'CREATE FUNCTION counted() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM t; END',
  ];

  /** The relations (outside pg_catalog) the session holds a lock on, inside its open transaction. */
  async function lockedBy(client: pg.Client): Promise<string[]> {
    const { rows } = await client.query<{ rel: string }>(
      `SELECT l.relation::regclass::text AS rel FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
       WHERE l.pid = pg_backend_pid() AND c.relnamespace <> 'pg_catalog'::regnamespace ORDER BY 1`,
    );
    return rows.map((r) => r.rel);
  }

  test('a read that readies a session while migrations run locks no relation; a full read does', async () => {
    const client = await connect();
    for (const statement of Locking) await client.query(statement);
    await CatalogTracker.install(client);
    const locks: Record<string, string[]> = {};
    for (const [what, read] of [
      ['full read', () => readSnapshot(client, defaultExclusions())],
      ['warming read', () => CatalogTracker.warmUp(client, defaultExclusions(), true)],
    ] as const) {
      await client.query('BEGIN');
      await read();
      locks[what] = await lockedBy(client);
      await client.query('COMMIT');
    }
    // The full read is the control: it does lock the tables its deparsing reads.
    expect(locks['full read']).toEqual(expect.arrayContaining(['t', 'v']));
    expect(locks['warming read']).toEqual([]);
    await client.end();
  });

  test('kept as a statement of the session, planned again once the catalogs have grown', async () => {
    const db = await server.createDatabase();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const named = async () =>
      (
        await client.query<{ name: string }>(
          "SELECT name FROM pg_prepared_statements WHERE name LIKE 'pgmv\\_full\\_%' ORDER BY name",
        )
      ).rows.map((r) => r.name);
    const first = await readSnapshot(client, defaultExclusions());
    expect(await readSnapshot(client, defaultExclusions())).toEqual(first);
    expect(await named()).toHaveLength(1);
    for (const m of generateHistory(400)) await client.query(m.up);
    const grown = await readSnapshot(client, defaultExclusions());
    expect(await named()).toHaveLength(2);
    // What the kept statement reads is what a session of its own reads.
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    expect(diffSnapshots(grown, await readSnapshot(other, defaultExclusions(), { prepared: false }))).toEqual(
      [],
    );
    await other.end();
    await client.end();
  });
});
