/** Stable check ids: used in reports, config, `--only` and `--skip`. */
export const CheckIds = [
  'apply',
  'reversibility',
  'rollback-all',
  'assertions',
  'ordering',
  'drift-snapshot',
  'drift-models',
  'target',
] as const;
export type CheckId = (typeof CheckIds)[number];

export type Severity = 'error' | 'warning';

/** One thing wrong with the migrations, written for the person reading the PR. */
export interface Finding {
  check: CheckId;
  severity: Severity;
  /** Migration set name. */
  set: string;
  /** Migration id, when the finding is about one migration. */
  migration?: string;
  /** Path relative to the working directory, when the finding points at a file. */
  file?: string;
  /** 1-based line in `file`. */
  line?: number;
  /** One paragraph: what happened, why it matters, what to do. */
  message: string;
  /** Longer raw material (Postgres message, command output, object diff), shown collapsed. */
  detail?: string;
}

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
}

export interface SetReport {
  name: string;
  dir: string;
  format: string;
  /** How the format was chosen, e.g. `auto: 3 *.up.sql files`. */
  formatReason?: string;
  migrations: MigrationReport[];
  /** Things worth telling that are not findings (e.g. rollback-all stopped at an irreversible migration). */
  notes: string[];
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
}

/** The verdict for a list of findings under a fail-on policy. */
export function resultOf(findings: readonly Finding[], failOn: Severity): Result {
  const failing = findings.filter((f) => f.severity === 'error' || failOn === 'warning');
  return failing.length > 0 ? 'failed' : 'passed';
}

/** Process exit status for a result: 0 passed, 1 failed, 2 could not check. */
export function exitCodeOf(result: Result): 0 | 1 | 2 {
  return result === 'passed' ? 0 : result === 'failed' ? 1 : 2;
}

/** The report for a run that could not check at all (bad input before anything ran). */
export function errorReport(message: string): Report {
  return { version: 1, result: 'error', postgres: null, sets: [], findings: [], timings: {}, error: message };
}
