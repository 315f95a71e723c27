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
  'locks',
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
  /** For checks with several rules (`locks`): which one, as `accept:` and `allow` comments name it. */
  rule?: string;
}

/** A finding before it is filed under its migration set (the set adds its name). */
export type NewFinding = Omit<Finding, 'set'>;
