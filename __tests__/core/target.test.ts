import { describe, expect, it } from '@jest/globals';
import type { HistoryEntry, OrderRules } from '../../src/core/ordering.js';
import { flywayChecksum, type TargetHistory, targetState } from '../../src/core/target.js';

describe('flywayChecksum', () => {
  it("is CRC-32 of the lines without line breaks or BOM, signed, as Flyway's validate computes it", () => {
    // Reference values from an independent CRC-32 (Python's zlib) of the joined lines.
    expect(flywayChecksum('CREATE TABLE accounts (id int);\n')).toBe(37828152);
    expect(flywayChecksum('a\r\nb\n')).toBe(-1635563411);
    expect(flywayChecksum('\uFEFFa\rb')).toBe(-1635563411);
    expect(flywayChecksum('héllo')).toBe(-1640267210);
  });
});

const rules: OrderRules = {
  tool: 'dbmate',
  runsBy: 'name',
  namesMatter: false,
  outOfOrder: 'OUT-OF-ORDER.',
  edited: '',
  deleted: '',
};

const entry = (id: string, version: bigint, parents?: string[]): HistoryEntry => ({
  id,
  key: String(version),
  version: [version],
  name: `${id}.sql`,
  file: `db/${id}.sql`,
  line: 1,
  source: id,
  ...(parents ? { parents } : {}),
});

const history = (tool: TargetHistory['tracking']['tool'], keys: string[], dirty = false): TargetHistory => ({
  tracking: { tool, table: 'public.t', unknown: 'UNKNOWN.' },
  exists: true,
  rows: keys.map((key) => ({ key })),
  ...(dirty ? { dirty } : {}),
});

describe('targetState', () => {
  const entries = [entry('1_a', 1n), entry('2_b', 2n), entry('3_c', 3n)];

  it('golang-migrate: every version up to the recorded one is applied', () => {
    const state = targetState(history('golang-migrate', ['2']), entries, rules, 'T');
    expect(state.applied.map((e) => e.id)).toEqual(['1_a', '2_b']);
    expect(state.pending.map((e) => e.id)).toEqual(['3_c']);
    expect(state.findings).toEqual([]);
  });

  it('dbmate: each recorded version, with the pending one out of order named', () => {
    const state = targetState(history('dbmate', ['0001', '3', '7']), entries, rules, 'T');
    expect(state.applied.map((e) => e.id)).toEqual(['1_a', '3_c']);
    expect(state.unknown).toEqual(['7']);
    expect(state.findings.map((f) => f.migration ?? 'unknown')).toEqual(['unknown', '2_b']);
    expect(state.findings[1]?.message).toContain('OUT-OF-ORDER.');
  });

  it('alembic: the recorded heads and everything they build on', () => {
    const graph = [entry('a', 0n), entry('b', 1n, ['0']), entry('c', 2n, ['0']), entry('d', 3n, ['1', '2'])];
    const state = targetState(history('alembic', ['1']), graph, { ...rules, runsBy: 'graph' }, 'T');
    expect(state.applied.map((e) => e.id)).toEqual(['a', 'b']);
    expect(state.pending.map((e) => e.id)).toEqual(['c', 'd']);
  });

  it('nothing recorded: everything is pending and nothing is wrong', () => {
    const state = targetState({ ...history('sequelize', []), exists: false }, entries, rules, 'T');
    expect(state.pending).toHaveLength(3);
    expect(state.findings).toEqual([]);
  });
});
