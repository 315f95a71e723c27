import { describe, expect, it } from '@jest/globals';
import {
  allowedRules,
  type LoggedLock,
  lockFindings,
  observedLocks,
  type StepLocks,
  stepTrace,
} from '../../src/core/locks.js';

describe('allowedRules', () => {
  it('reads allow comments in SQL, JavaScript and Python, one line at a time', () => {
    expect(allowedRules('-- pg-migrate-verify: allow rewrite, lock-timeout\nALTER TABLE t ...')).toEqual([
      'rewrite',
      'lock-timeout',
    ]);
    expect(allowedRules('  // pg-migrate-verify: allow blocking-index\nmodule.exports = {}')).toEqual([
      'blocking-index',
    ]);
    expect(allowedRules('# pg-migrate-verify: allow set-not-null')).toEqual(['set-not-null']);
    expect(allowedRules('SELECT 1; -- pg-migrate-verify: allow rewrite')).toEqual([]);
  });
});

const step = (over: Partial<StepLocks> = {}): StepLocks => ({
  id: '0002_x',
  direction: 'up',
  file: 'db/0002_x.up.sql',
  trace: { locks: [], rewrites: [] },
  diffs: [],
  existed: (t) => t !== 'public.fresh',
  constraintsBefore: () => [],
  severities: {},
  context: () => '',
  ...over,
});

describe('lockFindings', () => {
  const exclusive = {
    table: 'public.t',
    mode: 'AccessExclusiveLock',
    commands: ['ALTER TABLE'],
    started: 10,
    ended: 25,
    untimed: true,
    seen: 1,
  };

  it('a rewrite of an existing table, with why, and the untimed ACCESS EXCLUSIVE', () => {
    const found = lockFindings(
      step({ trace: { locks: [exclusive], rewrites: [{ table: 'public.t', reason: 4 }] } }),
    );
    expect(found.map((f) => [f.rule, f.severity])).toEqual([
      ['rewrite', 'warning'],
      ['lock-timeout', 'warning'],
    ]);
    expect(found[0]?.message).toContain('because of a column type change');
  });

  it('nothing for a table the migration created', () => {
    const fresh = { ...exclusive, table: 'public.fresh' };
    expect(
      lockFindings(step({ trace: { locks: [fresh], rewrites: [{ table: 'public.fresh', reason: 2 }] } })),
    ).toEqual([]);
  });

  it('severities from lock-rules: an error, or off', () => {
    const found = lockFindings(
      step({
        trace: { locks: [exclusive], rewrites: [{ table: 'public.t', reason: 2 }] },
        severities: { rewrite: 'error', 'lock-timeout': 'off' },
      }),
    );
    expect(found.map((f) => [f.rule, f.severity])).toEqual([['rewrite', 'error']]);
  });

  it('SET NOT NULL is fine when a valid CHECK proves it, a scan otherwise', () => {
    const diff = {
      key: 'column:public.t.a',
      object: { kind: 'column', name: 'public.t.a', parent: 'public.t', props: { notNull: true } },
      change: 'changed' as const,
      props: [{ prop: 'notNull', before: false, after: true }],
      severity: 'error' as const,
    };
    const timed = { ...exclusive, untimed: false };
    expect(
      lockFindings(step({ diffs: [diff], trace: { locks: [timed], rewrites: [] } })).map((f) => f.rule),
    ).toEqual(['set-not-null']);
    const proven = {
      kind: 'constraint',
      name: 't_a_not_null',
      parent: 'public.t',
      props: { type: 'check', definition: 'CHECK ((a IS NOT NULL))', validated: true },
    };
    expect(
      lockFindings(
        step({ diffs: [diff], trace: { locks: [timed], rewrites: [] }, constraintsBefore: () => [proven] }),
      ),
    ).toEqual([]);
  });
});

describe('observedLocks', () => {
  it('the strongest lock per existing table, with what it blocks and how long it was held', () => {
    const locks = [
      {
        table: 'public.t',
        mode: 'ShareLock',
        commands: ['CREATE INDEX'],
        started: 0,
        ended: 40,
        untimed: true,
        seen: 1,
      },
      {
        table: 'public.t',
        mode: 'AccessExclusiveLock',
        commands: ['ALTER TABLE'],
        started: 5,
        ended: 40,
        untimed: true,
        seen: 1,
      },
      {
        table: 'public.fresh',
        mode: 'AccessExclusiveLock',
        commands: ['CREATE TABLE'],
        ended: 40,
        untimed: true,
        seen: 1,
      },
    ];
    expect(observedLocks(step({ trace: { locks, rewrites: [] } }))).toEqual([
      {
        direction: 'up',
        table: 'public.t',
        mode: 'ACCESS EXCLUSIVE',
        blocks: 'reads and writes',
        heldMs: 35,
      },
    ]);
  });
});

describe('stepTrace', () => {
  const row = (over: Partial<LoggedLock>): LoggedLock => ({
    table: 'public.orders',
    raw: 'public.orders',
    mode: 'AccessExclusiveLock',
    tag: 'ALTER TABLE',
    started: null,
    at: 10,
    lockTimeout: '0',
    reason: null,
    ...over,
  });

  it('one observation per table and mode: first start, last end, its statements, the lock_timeout when first seen', () => {
    const trace = stepTrace(
      [
        // Logged out of order: what counts is the earliest statement.
        row({ at: 30, tag: 'CREATE INDEX', lockTimeout: '0', started: 25 }),
        row({ at: 10, lockTimeout: '2s', started: 5 }),
        row({ mode: 'ShareLock', tag: 'CREATE INDEX', at: 20 }),
        row({ mode: 'ShareLock', tag: 'CREATE INDEX', at: 40, lockTimeout: '2s' }),
      ],
      [],
    );
    expect(trace.locks).toEqual([
      {
        table: 'public.orders',
        mode: 'AccessExclusiveLock',
        commands: ['ALTER TABLE', 'CREATE INDEX'],
        started: 5,
        ended: 30,
        untimed: false,
        seen: 2,
      },
      {
        table: 'public.orders',
        mode: 'ShareLock',
        commands: ['CREATE INDEX'],
        ended: 40,
        untimed: true,
        seen: 2,
      },
    ]);
  });

  it('rewrites with their reasons together; no table now, and the history table, left out', () => {
    const trace = stepTrace(
      [
        row({ mode: 'rewrite', reason: 4, tag: null, at: null }),
        row({ mode: 'rewrite', reason: 2, tag: null, at: null }),
        row({ table: null, raw: null }),
        row({ table: 'public.schema_migrations', raw: 'public.schema_migrations' }),
      ],
      ['public.schema_migrations'],
    );
    expect(trace).toEqual({ locks: [], rewrites: [{ table: 'public.orders', reason: 6 }] });
  });
});
