import type { NewFinding } from './findings.js';
import { formatDuration } from './format.js';

export type Direction = 'up' | 'down';
/** When an assertion runs, relative to its migration: before its up step, after it, after its down step. */
export type Side = 'before' | 'after' | 'rolled back';
export const Sides: readonly Side[] = ['before', 'after', 'rolled back'];

/** One run of one assertion. */
export interface AssertionRun {
  /** The assertion file, relative to the working directory. */
  file: string;
  direction: Direction;
  side: Side;
  passed: boolean;
  ms: number;
  /** Why it failed: the false statement, the thrown error, the command's output. */
  reason?: string;
  /** Line in `file` of the failing statement, when known. */
  line?: number;
  /** Stopped by the step timeout. */
  timedOut?: boolean;
}

/**
 * Whether an assertion should pass: the `up` one holds only once its migration is applied, the
 * `down` one only while it is not (before the up step, and again after the down step).
 */
export function shouldPass(direction: Direction, side: Side): boolean {
  return direction === 'up' ? side === 'after' : side !== 'after';
}

const sideText: Record<Side, string> = {
  before: 'before it is applied',
  after: 'after it is applied',
  'rolled back': 'after it is rolled back',
};

/**
 * Findings for one migration's assertion runs: a failure where the assertion should pass, always;
 * strict (the default), also a pass where it should fail, and an assertion that passes on both
 * sides of the migration proves nothing.
 */
export function assertionFindings(
  migration: string,
  runs: readonly AssertionRun[],
  strict: boolean,
): NewFinding[] {
  const findings: NewFinding[] = [];
  const files = [...new Set(runs.map((r) => r.file))];
  for (const file of files) {
    const mine = runs.filter((r) => r.file === file);
    const at = (side: Side) => mine.find((r) => r.side === side);
    const before = at('before');
    const after = at('after');
    const direction = mine[0]?.direction ?? 'up';
    const name = `\`${migration}\` ${direction} assertion`;
    const problem = (run: AssertionRun, message: string): NewFinding => ({
      check: 'assertions',
      severity: 'error',
      migration,
      file,
      ...(run.line ? { line: run.line } : {}),
      message,
      ...(run.reason ? { detail: run.reason } : {}),
    });

    const timedOut = mine.find((r) => r.timedOut);
    if (timedOut) {
      findings.push(
        problem(
          timedOut,
          `The ${name} did not finish within the step timeout ${sideText[timedOut.side]}, and was stopped. An assertion should read a few rows and return: look for a lock it waits on or a loop that never ends.`,
        ),
      );
      continue;
    }
    if (strict && before?.passed && after?.passed) {
      findings.push(
        problem(
          after,
          `The ${name} passes both before and after \`${migration}\` is applied, so it proves nothing about the migration. Make it check ${direction === 'up' ? 'something the up step creates or changes, so that it fails before and passes after' : 'something the up step removes or changes, so that it passes before and fails after'}.`,
        ),
      );
      continue;
    }
    for (const run of mine) {
      const expected = shouldPass(direction, run.side);
      if (run.passed === expected || (!strict && !expected)) continue;
      if (run.side === 'rolled back') {
        findings.push(
          problem(
            run,
            expected
              ? `The ${name} fails after \`${migration}\` is rolled back, though it passed before the migration: ${firstLine(run.reason)}. The down step does not restore what the assertion checks. Make the down step undo it.`
              : `The ${name} still passes after \`${migration}\` is rolled back: what it checks outlives the down step. Make the down step undo it.`,
          ),
        );
      } else if (expected) {
        findings.push(
          problem(
            run,
            `The ${name} fails ${sideText[run.side]}: ${firstLine(run.reason)}. ${
              direction === 'up'
                ? 'The migration does not do what its assertion expects; fix the migration or the assertion.'
                : 'The assertion does not hold on the schema before the migration; fix the assertion.'
            }`,
          ),
        );
      } else {
        findings.push(
          problem(
            run,
            `The ${name} passes ${sideText[run.side]}, where it should fail: it does not tell the schema with \`${migration}\` from the schema without it. Make it check what the migration changes.`,
          ),
        );
      }
    }
  }
  return findings;
}

function firstLine(text: string | undefined): string {
  const line = (text ?? 'failed').split('\n')[0] ?? 'failed';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** `assertions 3/4 (12 ms)`: how many runs went as expected, for progress lines. */
export function assertionSummary(runs: readonly AssertionRun[]): string {
  const good = runs.filter((r) => r.passed === shouldPass(r.direction, r.side)).length;
  return `assertions ${good}/${runs.length}${runs.length ? ` (${formatDuration(runs.reduce((n, r) => n + r.ms, 0))})` : ''}`;
}
