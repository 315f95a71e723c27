import type { CheckEvent } from '../core/events.js';
import type { CheckId, NewFinding, Severity } from '../core/findings.js';
import type { LockRule } from '../core/locks.js';
import type { Logger } from '../core/logger.js';
import type { Acceptance, LiveTable, Scope } from '../core/report.js';
import type { StartedPostgres } from '../postgres/types.js';
import type { Seed } from './seed.js';

/**
 * What the checks of one migration set need, built once per set by verify(): no check reads the
 * run's settings. Findings and notes go through it, so every one is filed under the set.
 */
export interface SetContext {
  /** The set's name in reports and comments. */
  name: string;
  /** The migrations folder (absolute). */
  dir: string;
  /** Folder of per-migration assertions (absolute), if any. */
  assertionsDir?: string;
  /** Absolute directory that reported paths are relative to, and where commands run. */
  workingDirectory: string;
  /** Environment for migrations, assertions and commands. */
  env: NodeJS.ProcessEnv;
  /** Longest a single step (migration, assertion, seed, command) may run. */
  stepTimeoutMs: number;
  /** The checks that run. */
  checks: ReadonlySet<CheckId>;
  /** `changed`: with a base branch, the migrations it has as this branch has them are only applied. */
  scope: Scope;
  /** How many databases the walk may use at once. */
  jobs: number;
  /** Walk one migration at a time, never in passes (the reference the passes are tested against). */
  oneAtATime?: boolean;
  /** A migration without a down step is a reversibility error. */
  requireDown: boolean;
  /** Assertions must also fail on the side where they do not apply. */
  assertionsStrict: boolean;
  /** Runs assertion files of other languages. */
  assertCommand?: string;
  seed?: Seed;
  /** Committed schema snapshot (absolute), and whether to rewrite it instead of comparing. */
  snapshotFile?: string;
  updateSnapshot: boolean;
  /** Builds the models' schema into DATABASE_URL. */
  modelsCommand?: string;
  /** Deploy gate: the live database to check (read-only), and its history table when not the format's default. */
  targetDatabaseUrl?: string;
  targetHistoryTable?: string;
  /** Severity per `locks` rule (`lock-rules` in the config file); `off` drops the rule. */
  lockRules: Partial<Record<LockRule, Severity | 'off'>>;
  /** Deploy gate: the live size of a table on the target, for messages about it. */
  liveSize?(table: string): LiveTable | undefined;
  /** Findings the team accepts (they also decide what production is taken to have run). */
  accepted: readonly Acceptance[];
  server: StartedPostgres;
  log: Logger;
  now(): number;
  emit(event: CheckEvent): void;
  /** Files a finding under this set (and reports it as an event). */
  finding(finding: NewFinding): void;
  /** A line for the set's notes: worth telling, not a finding. */
  note(text: string): void;
  /** An acceptance a migration's own file makes (`-- pg-migrate-verify: allow <rule>`). */
  acceptInFile(acceptance: Acceptance): void;
}

/** A context whose findings, events and notes wait for `release()`, then pass straight through. */
export function heldContext(ctx: SetContext): { ctx: SetContext; release(): void } {
  let held: (() => void)[] | undefined = [];
  const later = (tell: () => void) => (held ? held.push(tell) : tell());
  return {
    ctx: {
      ...ctx,
      emit: (event) => later(() => ctx.emit(event)),
      finding: (finding) => later(() => ctx.finding(finding)),
      note: (text) => later(() => ctx.note(text)),
      acceptInFile: (acceptance) => later(() => ctx.acceptInFile(acceptance)),
    },
    release() {
      const told = held ?? [];
      held = undefined;
      for (const tell of told) tell();
    },
  };
}
