import { describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { generateHistory } from '../bench/generate.js';
import { CatalogTracker, defaultExclusions, readSnapshot } from '../src/catalog/tracker.js';
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
