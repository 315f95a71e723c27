import { beforeAll, describe, expect, test } from '@jest/globals';
import {
  directivesOf,
  hasTransactionControl,
  indexOfPosition,
  lineAt,
  loadSqlParser,
  reachOf,
  splitStatements,
  transactionBlocker,
} from '../../src/core/sql-text.js';

beforeAll(() => loadSqlParser());

describe('splitStatements', () => {
  test('keeps dollar-quoted bodies whole and reports where each statement starts', () => {
    const text =
      "-- héllo\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\nSELECT 'a;b';\n";
    const statements = splitStatements(text);
    expect(statements?.map((s) => s.sql)).toEqual([
      'CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql',
      "SELECT 'a;b'",
    ]);
    // Parser offsets are bytes; the multibyte comment must not shift the JS indexes.
    expect(statements?.map((s) => lineAt(text, s.start))).toEqual([2, 4]);
    expect(text.slice(statements?.[1]?.start)).toMatch(/^SELECT 'a;b'/);
  });

  test('is undefined for text that does not parse', () => {
    expect(splitStatements('CREATE TABLE (')).toBeUndefined();
  });
});

describe('transactionBlocker', () => {
  test.each([
    ['CREATE INDEX CONCURRENTLY i ON t (a);', 'CREATE INDEX CONCURRENTLY'],
    ['DROP INDEX CONCURRENTLY i;', 'DROP INDEX CONCURRENTLY'],
    ['REINDEX (CONCURRENTLY) INDEX i;', 'REINDEX CONCURRENTLY'],
    ['VACUUM t;', 'VACUUM'],
    ['CREATE DATABASE x;', 'CREATE DATABASE'],
    ["CREATE INDEX i ON t (a); ALTER TYPE m ADD VALUE 'x';", undefined],
    ['not sql at all', undefined],
  ])('%s -> %s', (sql, expected) => {
    expect(transactionBlocker(sql)).toBe(expected);
  });

  test('sees BEGIN/COMMIT in the text', () => {
    expect(hasTransactionControl('BEGIN; CREATE TABLE a (id int); COMMIT;')).toBe(true);
    expect(hasTransactionControl('CREATE TABLE a (id int);')).toBe(false);
    // A function body's BEGIN ... END is no transaction control; what follows it may be.
    const fn =
      'CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $body$\nBEGIN\n  RETURN NEW; -- end\nEND\n$body$;\n';
    expect(hasTransactionControl(fn)).toBe(false);
    expect(hasTransactionControl(`${fn}COMMIT;\nBEGIN;\nCREATE TABLE b (id int);`)).toBe(true);
    expect(hasTransactionControl('DO $$ BEGIN PERFORM 1; END $$;\n  commit;')).toBe(true);
    expect(hasTransactionControl("COMMENT ON TABLE a IS 'begin; commit';")).toBe(false);
    // A string the shortcut cannot read goes to the parser.
    expect(hasTransactionControl("SELECT E'it\\'s'; COMMIT;")).toBe(true);
  });
});

describe('positions', () => {
  test('a Postgres position counts code points, not UTF-16 units', () => {
    const text = '-- 😀 é\nSELECT x';
    // Postgres: "😀" is one character. Position of "x" (1-based, characters): 16.
    const chars = [...text];
    const position = chars.indexOf('x') + 1;
    expect(text[indexOfPosition(text, position)]).toBe('x');
    expect(lineAt(text, indexOfPosition(text, position))).toBe(2);
  });

  test('directives are read from comments anywhere in the file', () => {
    expect([...directivesOf('SELECT 1;\n  -- pg-migrate-verify: no-transaction\n')]).toEqual([
      'no-transaction',
    ]);
    expect(directivesOf('-- pg-migrate-verify:irreversible').has('irreversible')).toBe(true);
    expect(directivesOf('SELECT 1').size).toBe(0);
  });
});

describe('reachOf: the names a step may change, when its statements name them', () => {
  beforeAll(() => loadSqlParser());

  test('tables, indexes, views, types, functions, triggers, comments: their names and the relations they mention', () => {
    const reach = (sql: string) => [...(reachOf(sql) ?? ['(not known)'])].sort();
    expect(
      reach('BEGIN;RESET lock_timeout;\nCREATE TABLE app.Orders (id int REFERENCES "Users" (id));\n;'),
    ).toEqual(['orders', 'users']);
    expect(reach('ALTER TABLE t ADD COLUMN c int DEFAULT 1 CHECK (c > 0)')).toEqual(['t']);
    expect(reach('CREATE INDEX i ON s.t (lower(name)) WHERE x > 1')).toEqual(['t']);
    expect(reach('CREATE VIEW v AS SELECT id FROM t JOIN u USING (id)')).toEqual(['v']);
    expect(reach('CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)')).toContain('p');
    // Comments, strings and bodies hold no statement of their own.
    expect(
      reach(
        '-- a; DROP TABLE x\nCREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $b$ BEGIN DROP TABLE y; RETURN 1; END $b$; /* ; */ COMMENT ON TABLE "T" IS \'a;b\'',
      ),
    ).toEqual(['g', 't']);
    expect(
      reach("CREATE TYPE e AS ENUM ('a'); CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1"),
    ).toEqual(['e', 'f']);
    expect(reach('CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()')).toEqual(['t']);
    expect(reach("COMMENT ON COLUMN s.t.c IS 'x'; COMMENT ON TABLE u IS 'y'")).toEqual(['t', 'u']);
  });

  test('anything else is not known: data, code, drops, renames, sequences by name', () => {
    for (const sql of [
      'INSERT INTO t VALUES (1)',
      'DO $$ BEGIN EXECUTE $x$CREATE TABLE z (id int)$x$; END $$',
      'SELECT make_partitions()',
      'DROP TABLE t',
      'ALTER TABLE t RENAME TO u',
      'ALTER TABLE t SET SCHEMA s',
      'ALTER SEQUENCE t_id_seq INCREMENT 2',
      "COMMENT ON INDEX i IS 'x'",
      "ALTER TYPE e ADD VALUE 'b'",
      'CREATE TABLE t (id int); UPDATE t SET id = 1',
      'CREATE TABLE (',
      'CREATE TABLE z AS SELECT make_it()',
      "COMMENT ON TABLE t IS E'a\\'b'",
      "CREATE TABLE t (id int); COMMENT ON TABLE t IS 'unclosed",
    ])
      expect([sql, reachOf(sql)]).toEqual([sql, undefined]);
  });
});
