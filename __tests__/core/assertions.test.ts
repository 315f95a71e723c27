import { describe, expect, it } from '@jest/globals';
import {
  type AssertionRun,
  assertionFindings,
  type Direction,
  type Side,
  shouldPass,
} from '../../src/core/assertions.js';

const run = (direction: Direction, side: Side, passed: boolean, reason?: string): AssertionRun => ({
  file: `a/0001_x.${direction}.sql`,
  direction,
  side,
  passed,
  ms: 1,
  ...(reason ? { reason } : {}),
});

/** Runs on all three sides with the given results. */
const sides = (direction: Direction, [b, a, r]: [boolean, boolean, boolean]) => [
  run(direction, 'before', b, b ? undefined : 'false before'),
  run(direction, 'after', a, a ? undefined : 'false after'),
  run(direction, 'rolled back', r, r ? undefined : 'false rolled back'),
];

const messages = (runs: AssertionRun[], strict = true) =>
  assertionFindings('0001_x', runs, strict).map((f) => f.message);

describe('assertion semantics', () => {
  it('an up assertion holds only after the migration; a down assertion only without it', () => {
    expect(['before', 'after', 'rolled back'].map((s) => shouldPass('up', s as Side))).toEqual([
      false,
      true,
      false,
    ]);
    expect(['before', 'after', 'rolled back'].map((s) => shouldPass('down', s as Side))).toEqual([
      true,
      false,
      true,
    ]);
  });

  it('a correct pair has no findings', () => {
    expect(messages([...sides('up', [false, true, false]), ...sides('down', [true, false, true])])).toEqual(
      [],
    );
  });

  it('an assertion that passes on both sides proves nothing (strict), and is fine when not strict', () => {
    expect(messages(sides('up', [true, true, true]))).toEqual([
      'The `0001_x` up assertion passes both before and after `0001_x` is applied, so it proves nothing about the migration. Make it check something the up step creates or changes, so that it fails before and passes after.',
    ]);
    expect(messages(sides('up', [true, true, true]), false)).toEqual([]);
  });

  it('an up assertion failing after the migration is reported with its reason, strict or not', () => {
    const found = assertionFindings('0001_x', sides('up', [false, false, false]), true);
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toBe(
      'The `0001_x` up assertion fails after it is applied: false after. The migration does not do what its assertion expects; fix the migration or the assertion.',
    );
    expect(messages(sides('up', [false, false, false]), false)).toHaveLength(1);
  });

  it('a down assertion failing after rollback says the down step does not restore it', () => {
    expect(messages(sides('down', [true, false, false]))).toEqual([
      'The `0001_x` down assertion fails after `0001_x` is rolled back, though it passed before the migration: false rolled back. The down step does not restore what the assertion checks. Make the down step undo it.',
    ]);
  });

  it('passing where it should fail is a finding only when strict', () => {
    expect(messages(sides('down', [true, true, true]))).toHaveLength(1);
    expect(
      messages(
        sides('down', [true, false, true])
          .slice(0, 2)
          .concat(run('down', 'rolled back', true)),
      ),
    ).toEqual([]);
    expect(messages([run('up', 'before', true), run('up', 'after', true)], false)).toEqual([]);
    expect(messages([run('up', 'before', true), run('up', 'after', false, 'no')])).toEqual([
      'The `0001_x` up assertion passes before it is applied, where it should fail: it does not tell the schema with `0001_x` from the schema without it. Make it check what the migration changes.',
      'The `0001_x` up assertion fails after it is applied: no. The migration does not do what its assertion expects; fix the migration or the assertion.',
    ]);
  });

  it('a hanging assertion is one finding, not one per side', () => {
    const runs = sides('down', [false, false, false]).map((r) => ({
      ...r,
      timedOut: true,
      reason: undefined,
    }));
    const found = assertionFindings('0001_x', runs, true);
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toContain('did not finish within the step timeout before it is applied');
  });
});
