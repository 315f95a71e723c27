import { describe, expect, it } from '@jest/globals';
import type { Finding } from '../../src/core/findings.js';
import {
  compareHistories,
  type HistoryEntry,
  historyFindings,
  normalizedLines,
  type OrderRules,
  timestampVersions,
  versionKey,
} from '../../src/core/ordering.js';
import { applyAcceptances } from '../../src/core/report.js';

const rules = (runsBy: 'version' | 'name', namesMatter = false): OrderRules => ({
  tool: runsBy === 'name' ? 'dbmate' : 'golang-migrate',
  runsBy,
  namesMatter,
  outOfOrder: 'OUT-OF-ORDER.',
  edited: 'EDITED.',
  deleted: 'DELETED.',
});

/** `0003_add_email` with a numeric version and text. */
function entry(id: string, source = `-- ${id}\nCREATE TABLE t${id.slice(0, 4)} ();\n`): HistoryEntry {
  const digits = /^(\d+)/.exec(id)?.[1] ?? '0';
  return {
    id,
    key: versionKey([BigInt(digits)]),
    version: [BigInt(digits)],
    name: `${id}.sql`,
    file: `migrations/${id}.sql`,
    line: 1,
    source,
  };
}

describe('normalizedLines', () => {
  it('ignores line endings, trailing whitespace, a BOM and trailing blank lines, nothing else', () => {
    expect(normalizedLines('\uFEFFa  \r\nb\t\r\n\r\n')).toEqual(['a', 'b']);
    expect(normalizedLines('a\n  b')).toEqual(['a', '  b']);
  });
});

describe('historyFindings', () => {
  it('reports two migrations with one version', () => {
    const found = historyFindings([entry('0001_a'), entry('0002_b'), entry('0002_c')], rules('version'));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ check: 'ordering', migration: '0002_c', file: 'migrations/0002_c.sql' });
    expect(found[0]?.message).toContain(
      "'migrations/0002_b.sql' and 'migrations/0002_c.sql' have the same version (2)",
    );
  });

  it('reports names that sort otherwise than versions, for a tool that runs by name', () => {
    const history = [entry('20250817_x'), entry('20250817120000_y'), entry('20250901000000_z')];
    const found = historyFindings(history, rules('name'));
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toContain(
      "dbmate runs migrations in file-name order, which puts '20250817120000_y.sql' before '20250817_x.sql'",
    );
    expect(found[0]?.detail).toBe(
      [
        'version order:',
        '  20250817_x.sql',
        '  20250817120000_y.sql',
        'dbmate (file-name order):',
        '  20250817120000_y.sql',
        '  20250817_x.sql',
      ].join('\n'),
    );
    // A tool that parses versions as numbers runs them in version order: nothing to report.
    expect(historyFindings(history, rules('version'))).toEqual([]);
  });

  it('finds nothing wrong with a clean history', () => {
    expect(historyFindings([entry('0001_a'), entry('0002_b')], rules('name'))).toEqual([]);
  });

  it('warns when a tool that records names runs migrations of one version in name order', () => {
    const named = (name: string, version: bigint): HistoryEntry => ({
      ...entry(name),
      id: name,
      key: `${name}.cjs`,
      name: `${name}.cjs`,
      version: [version],
    });
    const found = historyFindings(
      [
        named('20250817-create-orders', 20250817000000n),
        named('20250817-alter-orders', 20250817000000n),
        named('20250809051256-create-users', 20250809051256n),
      ],
      { ...rules('name'), tool: 'sequelize-cli' },
    );
    expect(found).toEqual([
      {
        check: 'ordering',
        severity: 'warning',
        migration: '20250817-create-orders',
        file: 'migrations/20250817-create-orders.sql',
        message:
          "'20250817-alter-orders.cjs' and '20250817-create-orders.cjs' have the same version (20250817000000), so sequelize-cli runs them in file-name order: `20250817-alter-orders` before `20250817-create-orders`. If one of them needs another to run first, give it an earlier version; if the order does not matter, accept this warning.",
      },
    ]);
  });
});

describe('timestampVersions', () => {
  it('compares timestamps at one precision, and other numbers as numbers', () => {
    expect(timestampVersions(['20250817', '20250809051256', '0001', '12', undefined])).toEqual([
      20250817000000n,
      20250809051256n,
      1n,
      12n,
      undefined,
    ]);
    // Milliseconds widen every timestamp of the folder alike.
    expect(timestampVersions(['20250817120000123', '20250817'])).toEqual([
      20250817120000123n,
      20250817000000000n,
    ]);
  });
});

describe('compareHistories', () => {
  const base = [entry('0001_a'), entry('0003_c')];

  it('accepts a branch that only adds migrations after the base', () => {
    const result = compareHistories(base, [...base, entry('0004_d')], rules('version'), 'main');
    expect(result.findings).toEqual([]);
    expect(result.added.map((e) => e.id)).toEqual(['0004_d']);
  });

  it('reports a new migration that sorts before one the base already has', () => {
    const result = compareHistories(
      base,
      [base[0] as HistoryEntry, entry('0002_b'), base[1] as HistoryEntry],
      rules('version'),
      'main',
    );
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]).toMatchObject({ migration: '0002_b', file: 'migrations/0002_b.sql' });
    expect(result.findings[0]?.message).toBe(
      '`0002_b` is new on this branch but sorts before `0003_c`, already on main and run by production. OUT-OF-ORDER. Give it a version that sorts after `0003_c`.',
    );
  });

  it('reports an edit at its first changed line, with both texts in the detail', () => {
    const edited = { ...(base[1] as HistoryEntry), source: '-- 0003_c\nCREATE TABLE t0003 (id int);\n' };
    const result = compareHistories(base, [base[0] as HistoryEntry, edited], rules('version'), 'main');
    expect(result.edited).toEqual(['3']);
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]).toMatchObject({ migration: '0003_c', line: 2 });
    expect(result.findings[0]?.message).toContain('first change at line 2');
    expect(result.findings[0]?.detail).toContain('- CREATE TABLE t0003 ();\n+ CREATE TABLE t0003 (id int);');
  });

  it('does not count line endings or trailing spaces as an edit', () => {
    const crlf = base.map((e) => ({ ...e, source: `${e.source.replaceAll('\n', '  \r\n')}\r\n` }));
    const result = compareHistories(base, crlf, rules('version'), 'main');
    expect(result.findings).toEqual([]);
    expect(result.edited).toEqual([]);
  });

  it('reports a renamed migration once, as a rename, not as a deletion plus an out-of-order addition', () => {
    const renamed = { ...entry('0002_c', (base[1] as HistoryEntry).source) };
    const result = compareHistories(base, [base[0] as HistoryEntry, renamed], rules('version'), 'main');
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]?.message).toContain('renames it to `0002_c` (version 3 becomes 2)');
  });

  it('reports a deleted migration', () => {
    const result = compareHistories(base, [base[0] as HistoryEntry], rules('version'), 'main');
    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]).toMatchObject({ migration: '0003_c' });
    expect(result.findings[0]?.message).toContain('is on main but not on this branch');
    expect(result.removed).toEqual(['3']);
  });

  it('reports a new name for a kept version only where the tool checks names', () => {
    const retitled = [base[0] as HistoryEntry, { ...(base[1] as HistoryEntry), id: '0003_renamed' }];
    expect(compareHistories(base, retitled, rules('version'), 'main').findings).toEqual([]);
    const flyway = compareHistories(base, retitled, rules('version', true), 'main');
    expect(flyway.findings).toHaveLength(1);
    expect(flyway.findings[0]?.message).toContain('renames it to `0003_renamed`');
  });

  it('matches a base migration to its own file when the branch adds a second one with its version', () => {
    const result = compareHistories(base, [...base, entry('0003_other')], rules('version'), 'main');
    // The duplicate itself is historyFindings' business; here it is just an addition.
    expect(result.findings).toEqual([]);
    expect(result.added.map((e) => e.id)).toEqual(['0003_other']);
  });

  it('leaves repeatable migrations out: they are meant to change', () => {
    const r = { ...entry('R__views'), key: 'R__views', repeatable: true };
    const result = compareHistories(
      [...base, r],
      [...base, { ...r, source: 'changed' }],
      rules('version'),
      'main',
    );
    expect(result.findings).toEqual([]);
  });
});

describe('applyAcceptances', () => {
  const finding = (migration: string, check: Finding['check'] = 'ordering'): Finding => ({
    check,
    severity: 'error',
    set: 'migrations',
    migration,
    message: `about ${migration}`,
  });

  it('sets accepted findings aside with their reason and returns unused entries', () => {
    const result = applyAcceptances(
      [finding('0001_a'), finding('0002_b'), finding('0002_b', 'apply')],
      [
        { id: '0002_b', check: 'ordering', reason: 'fixed by hand in 2024' },
        { id: '0009_gone', check: 'ordering', reason: 'stale' },
      ],
    );
    expect(result.findings.map((f) => `${f.check}:${f.migration}`)).toEqual([
      'ordering:0001_a',
      'apply:0002_b',
    ]);
    expect(result.accepted).toEqual([{ ...finding('0002_b'), reason: 'fixed by hand in 2024' }]);
    expect(result.unused.map((a) => a.id)).toEqual(['0009_gone']);
  });

  it('respects the set an entry names', () => {
    const result = applyAcceptances(
      [finding('0002_b')],
      [{ id: '0002_b', check: 'ordering', reason: 'x', set: 'other' }],
    );
    expect(result.findings).toHaveLength(1);
  });
});
