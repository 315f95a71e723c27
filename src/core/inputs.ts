/** Input names, spelled once: Action inputs, CLI flags (`--name`) and config keys are these. */
export const Inputs = {
  MigrationsDir: 'migrations-dir',
  Format: 'format',
  Postgres: 'postgres',
  PostgresVersion: 'postgres-version',
  PostgresImage: 'postgres-image',
  DatabaseUrl: 'database-url',
  BaseRef: 'base-ref',
  Scope: 'scope',
  AssertionsDir: 'assertions-dir',
  AssertCommand: 'assert-command',
  AssertionsStrict: 'assertions-strict',
  ListCommand: 'list-command',
  UpCommand: 'up-command',
  DownCommand: 'down-command',
  ServeCommand: 'serve-command',
  HistoryTable: 'history-table',
  AlembicCommand: 'alembic-command',
  UrlVariable: 'database-url-variable',
  SeedAfter: 'seed-after',
  SeedFile: 'seed-file',
  SeedCommand: 'seed-command',
  SnapshotFile: 'snapshot-file',
  UpdateSnapshot: 'update-snapshot',
  ModelsCommand: 'models-command',
  TargetDatabaseUrl: 'target-database-url',
  Comment: 'comment',
  GithubToken: 'github-token',
  FailOn: 'fail-on',
  StepTimeout: 'step-timeout',
  Jobs: 'jobs',
  RequireDown: 'require-down',
  Only: 'only',
  Skip: 'skip',
  WorkingDirectory: 'working-directory',
  Config: 'config',
  Set: 'set',
  Junit: 'junit',
} as const;

/** Raw string values by input name, as the Action or the CLI received them; undefined when not given. */
export type RawInputs = Partial<Record<(typeof Inputs)[keyof typeof Inputs], string>>;

/** Defaults of inputs that layers below the settings also need, written once. */
export const Defaults = {
  /** `step-timeout`: five minutes. */
  stepTimeoutMs: 5 * 60_000,
} as const;
