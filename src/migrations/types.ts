import type pg from 'pg';
import type { NewFinding } from '../core/findings.js';
import type { OrderRules } from '../core/ordering.js';
import type { Tracking } from '../core/target.js';

export const Formats = ['auto', 'sql', 'sequelize', 'umzug', 'alembic', 'command'] as const;
export type Format = (typeof Formats)[number];

/** What a step receives: a connected client on the database under test, and its URL for external runners. */
export interface StepContext {
  client: pg.Client;
  databaseUrl: string;
  /** Aborted when the step timeout expires; runners that spawn processes kill them on it. */
  signal: AbortSignal;
  /**
   * Our bookkeeping statement for this step. A step that runs in one transaction of ours includes
   * it there and sets `recorded`, so the record is atomic with the migration and costs no round trip.
   */
  bookkeeping?: string;
  recorded?: boolean;
  /**
   * Statements of ours to run right after the step's COMMIT, in the same round trip, for a step
   * that can carry them (SQL in one transaction of ours); such a step puts their results in
   * `followed`. They are written never to fail; if the round trip fails anyway, `committed` says
   * whether the step itself went through.
   */
  follow?: readonly string[];
  followed?: pg.QueryResult[];
  committed?(): Promise<boolean>;
  /** State a format keeps per database (e.g. a Sequelize instance), released by `onClose`. */
  shared: Map<string, unknown>;
  onClose(release: () => Promise<void>): void;
  /** Registers a probe that is true while work on this database's connections is still running. */
  onBusy(probe: () => boolean): void;
  /**
   * Called when the migration's own function has returned: waits for work it started and did not
   * await (a missing `await`), bounded by the step timeout, and records a notice when there was any.
   */
  settle(): Promise<void>;
  /** Something about the step the report should say; the step still counts as done. */
  notice(notice: StepNotice): void;
}

/**
 * What a step says besides succeeding: `error` is a finding against the migration, `note` a line in
 * the set's notes. The message follows "`<id>` (<direction>) ", e.g. "dropped SequelizeMeta ...".
 */
export interface StepNotice {
  severity: 'error' | 'note';
  message: string;
  detail?: string;
}

/** One direction of one migration. */
export interface Step {
  /** The file that holds the step, relative to the working directory. */
  file: string;
  /** Line in `file` where the step's text starts (dbmate sections start mid-file). */
  line: number;
  /** Set when the step runs statement by statement outside a transaction, with the reason. */
  noTransaction?: string;
  /** `locks` rules its file allows (`-- pg-migrate-verify: allow rewrite`). */
  allow?: string[];
  run(context: StepContext): Promise<void>;
  /**
   * The step as SQL that opens its own transaction and leaves it open for our bookkeeping and
   * COMMIT, for a step that can travel in one query string with others (a replay of migrations that
   * are only applied); undefined for a step that cannot (code, statements outside a transaction,
   * transaction control of its own).
   */
  batched?(): string | undefined;
  /**
   * Applies this step's migration together with the ones after it that share `with` (one alembic
   * command for many revisions): returns how many of `migrations`, from the first, are applied
   * afterwards, all of them or the ones before a failure. The runner records them.
   */
  together?: {
    with: object;
    run(context: StepContext, migrations: readonly Migration[]): Promise<number>;
  };
}

export interface Migration {
  /** Stable id: the file name without extension, e.g. `0001_create_users`. */
  id: string;
  /** Version segments for ordering (golang-migrate `[1]`, Flyway `1.2` as `[1, 2]`). */
  version: bigint[];
  /** What the migration tool records once it ran it (the version for SQL tools; the id otherwise). */
  key: string;
  /** The file or folder name the migration tool sorts by. */
  name: string;
  /** What the tool sorts by when it is not `name` (diesel: the version as text). */
  order?: string;
  /** In a graph (alembic): the keys of the migrations it builds on. */
  parents?: string[];
  /** The up text as production runs it: compared with the base branch's copy. */
  source: string;
  /** Re-run whenever its text changes (Flyway `R__`): no place in the order, edits expected. */
  repeatable?: boolean;
  up: Step;
  /** Undefined when the migration has no down step. */
  down?: Step;
  /** Why there is no down step, for the report. */
  noDown?: string;
}

/** A folder of migrations as one format reads it. */
export interface LoadedSet {
  format: Exclude<Format, 'auto'>;
  /** e.g. `golang-migrate layout (*.up.sql / *.down.sql)`. */
  layout: string;
  migrations: Migration[];
  /** How the format's tool orders and records migrations. */
  rules: OrderRules;
  /** `schema.table` of the framework's own history table, left out of schema comparisons. */
  historyTables?: string[];
  /** How the format's tool records what it ran on a database: what the deploy gate reads. */
  tracking: Tracking;
  /** Problems with the files themselves (mis-named, orphan down files). */
  findings: NewFinding[];
  /** What the reader should know about the folder that is not a problem (files the tool ignores). */
  notes?: string[];
  /** Ends what the format keeps running for the whole run (alembic's interpreter). */
  close?(): Promise<void>;
}

/** A step that failed, located as precisely as we can. */
export class StepError extends Error {
  override name = 'StepError';
  constructor(
    message: string,
    readonly file: string,
    readonly line: number | undefined,
    /** The driver's or the runner's own words (Postgres message, detail, hint, command output). */
    readonly detail?: string,
    options?: { cause?: unknown; ranNothing?: boolean },
  ) {
    super(message, options);
    this.ranNothing = options?.ranNothing ?? false;
  }
  /** True when the step failed before it could change anything (its module did not load). */
  readonly ranNothing: boolean;
}
