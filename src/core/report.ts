import type { AssertionRun } from './assertions.js';
import type { SchemaPicture } from './erd.js';
import type { CheckId, Finding, Severity } from './findings.js';
import type { ObservedLock } from './locks.js';

export interface StepResult {
  ok: boolean;
  ms: number;
}

export type Reversible = 'yes' | 'no' | 'no-down' | 'skipped';

export interface MigrationReport {
  id: string;
  /** The up file (or the module), relative to the working directory. */
  file: string;
  up: StepResult | null;
  down: StepResult | null;
  reversible: Reversible;
  /** Schema objects the migration adds, drops or changes, e.g. `+ table public.users`. */
  changes: string[];
  /** Its assertions, each run before the up step, after it, and after the down step. */
  assertions?: AssertionRun[];
  /** What its steps did to tables that existed before it: the strongest lock per table and direction. */
  locks?: ObservedLock[];
  /** Deploy gate: the live size of the target's tables its up step touches. */
  live?: LiveTable[];
}

/** A table on the deploy gate's target: the planner's row estimate and its size on disk. */
export interface LiveTable {
  table: string;
  rows: number;
  bytes: number;
}

/** The deploy gate's view of one set on the target database. */
export interface TargetReport {
  /** The target's URL, its password masked. */
  database: string;
  /** The history table read there (`schema.table`). */
  table: string;
  /** Migrations the target has applied, in the repository's order. */
  applied: string[];
  /** Migrations a deploy would run, in order. */
  pending: string[];
  /** Recorded on the target, unknown to the repository. */
  unknown: string[];
}

/** Which migrations get the per-migration checks: the ones a branch changes, or every one. */
export const Scopes = ['changed', 'all'] as const;
export type Scope = (typeof Scopes)[number];

export interface SetReport {
  name: string;
  dir: string;
  format: string;
  /** How the format was chosen, e.g. `auto: 3 *.up.sql files`. */
  formatReason?: string;
  migrations: MigrationReport[];
  /** Things worth telling that are not findings (e.g. rollback-all stopped at an irreversible migration). */
  notes: string[];
  /** The base branch this set was compared with, when a base ref was given. */
  base?: BaseReport;
  /** Which migrations were checked: every one (`all`), or the ones this branch changes. */
  scope: Scope;
  /**
   * With `scope: changed`, how many migrations from the first this branch shares unchanged with the
   * base branch: applied without per-migration checks (`migrations` lists the rest).
   */
  unchecked?: number;
  /** The deploy gate's target, when a target database was given. */
  target?: TargetReport;
  /** The tables the checked migrations add, drop or alter, for the diagram (absent when none changed). */
  picture?: SchemaPicture;
  /** The checks that ran for this set (a drift check only with its snapshot file or models command). */
  checks?: CheckId[];
}

export interface BaseReport {
  /** As given, e.g. `main`. */
  ref: string;
  commit: string;
  /** Migrations the base branch has. */
  migrations: number;
  /** Ids of the migrations this branch adds. */
  added: string[];
}

/** A finding the config file accepts on purpose (`accept:`), with the team's reason. */
export interface Acceptance {
  /** Migration id the finding is about. */
  id: string;
  /** Why the team accepts it: shown in every report. */
  reason: string;
  /** The check whose findings it accepts (default `ordering`). */
  check: CheckId;
  /** Only in this migration set (all sets when absent). */
  set?: string;
  /** Only findings of this rule of the check (`locks`: `rewrite`, ...); all its findings when absent. */
  rule?: string;
  /** Where it comes from: the config file (the default), or an `allow` comment in the migration's file. */
  source?: 'config' | 'file';
}

export interface AcceptedFinding extends Finding {
  reason: string;
}

export type Result = 'passed' | 'failed' | 'error';

export interface Report {
  version: 1;
  result: Result;
  postgres: { version: string; provider: string } | null;
  sets: SetReport[];
  findings: Finding[];
  /** Wall-clock milliseconds per phase. */
  timings: Record<string, number>;
  /** Set when result is `error`: why the tool could not check. */
  error?: string;
  /** Findings the config file accepts, with the reason; they do not fail the run. */
  accepted?: AcceptedFinding[];
}

/** The verdict for a list of findings under a fail-on policy. */
export function resultOf(findings: readonly Finding[], failOn: Severity): Result {
  const failing = findings.filter((f) => f.severity === 'error' || failOn === 'warning');
  return failing.length > 0 ? 'failed' : 'passed';
}

/** True when `acceptance` accepts `finding`. */
export function accepts(
  acceptance: Acceptance,
  finding: Pick<Finding, 'check' | 'migration' | 'set' | 'rule'>,
): boolean {
  return (
    acceptance.check === finding.check &&
    acceptance.id === finding.migration &&
    (acceptance.set === undefined || acceptance.set === finding.set) &&
    (acceptance.rule === undefined || acceptance.rule === finding.rule)
  );
}

/**
 * Sets accepted findings aside: they are reported with their reason but do not count. Acceptances
 * that match nothing come back too, so stale entries can be pointed out.
 */
export function applyAcceptances(
  findings: readonly Finding[],
  acceptances: readonly Acceptance[],
): { findings: Finding[]; accepted: AcceptedFinding[]; unused: Acceptance[] } {
  const kept: Finding[] = [];
  const accepted: AcceptedFinding[] = [];
  const used = new Set<Acceptance>();
  for (const finding of findings) {
    const by = acceptances.find((a) => accepts(a, finding));
    if (!by) kept.push(finding);
    else {
      used.add(by);
      accepted.push({ ...finding, reason: by.reason });
    }
  }
  return { findings: kept, accepted, unused: acceptances.filter((a) => !used.has(a)) };
}

/** Process exit status for a result: 0 passed, 1 failed, 2 could not check. */
export function exitCodeOf(result: Result): 0 | 1 | 2 {
  return result === 'passed' ? 0 : result === 'failed' ? 1 : 2;
}

/** The report for a run that could not check at all (bad input before anything ran). */
export function errorReport(message: string): Report {
  return { version: 1, result: 'error', postgres: null, sets: [], findings: [], timings: {}, error: message };
}
