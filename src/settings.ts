import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import type { Seed } from './checks/seed.js';
import { CannotCheck, messageOf } from './core/errors.js';
import { type CheckId, CheckIds, type Severity } from './core/findings.js';
import { Defaults, Inputs, type RawInputs } from './core/inputs.js';
import { type LockRule, LockRules } from './core/locks.js';
import { type Acceptance, type Scope, Scopes } from './core/report.js';
import { type Format, Formats } from './migrations/types.js';
import { type ProviderChoice, ProviderChoices, SupportedMajors } from './postgres/types.js';

export { Inputs, type RawInputs } from './core/inputs.js';

/** One folder of migrations and what to check it against. */
export interface SetSettings {
  /** Name in reports and comments (the folder by default). */
  name: string;
  /** Absolute path of the migrations folder. */
  dir: string;
  /** Migration format; `auto` detects it from the folder. */
  format: Format;
  /** For `format: command`: the runner's commands (`{id}` is filled in for up and down). */
  commands?: { list: string; up: string; down?: string; serve?: string };
  /** The runner's own history tables (`schema.table`), left out of schema comparisons. */
  historyTables: string[];
  /** How to run alembic, e.g. `python3 -m alembic` (default `alembic`). */
  alembicCommand?: string;
  /** An extra environment variable that gets the database URL (besides DATABASE_URL and PG*). */
  urlVariable?: string;
  /** Folder of per-migration assertions (absolute), if any. */
  assertionsDir?: string;
  /** Runs assertion files of other languages: `{id}`, `{direction}`, `{file}` are filled in. */
  assertCommand?: string;
  /** Rows loaded after one migration, so later checks run on a database with data in it. */
  seed?: Seed;
  /** Committed schema snapshot file (absolute), if any. */
  snapshotFile?: string;
  /** Command that builds the models' schema into DATABASE_URL, if any. */
  modelsCommand?: string;
}

export interface Settings {
  /** Migration sets to verify, in order. */
  sets: SetSettings[];
  /** Absolute directory that relative paths and reported file names are relative to. */
  workingDirectory: string;
  /** Which Postgres to run the checks on. */
  postgres: ProviderChoice;
  /** Requested major (14-18); undefined lets the provider choose. */
  postgresVersion?: number;
  /** Container image for the docker provider, e.g. `postgis/postgis:16-3.4`. */
  postgresImage?: string;
  /** Server the checks may create scratch databases in (url provider). */
  databaseUrl?: string;
  /** Git ref of the base branch for ordering and two-phase replay. */
  baseRef?: string;
  /**
   * Which migrations the per-migration checks (reversibility, assertions, locks) run for: the ones
   * the branch adds or edits against the base ref (`changed`), or every one (`all`).
   */
  scope: Scope;
  /** Rewrite snapshot files instead of comparing with them. */
  updateSnapshot: boolean;
  /** Live database for the read-only deploy gate. */
  targetDatabaseUrl?: string;
  /** Post or update the PR comment (Action only). */
  comment: boolean;
  /** Token for the PR comment (Action only). */
  githubToken?: string;
  /** Which findings fail the run. */
  failOn: Severity;
  /** Longest a single migration step may run, in milliseconds. */
  stepTimeoutMs: number;
  /** The one set of the config file this run checks (`set`: a job of a matrix), if one was named. */
  selectedSet?: string;
  /** How many databases one set's walk may use at once (a long walk is cut into ranges). */
  jobs: number;
  /** A migration without a down step is a reversibility error instead of a note. */
  requireDown: boolean;
  /** Assertions must also fail on the side where they do not apply (else they prove nothing). */
  assertionsStrict: boolean;
  /** Checks to run (after `only` and `skip`). */
  checks: Set<CheckId>;
  /** Findings the team accepts on purpose (config file `accept:`), each with its reason. */
  accepted: Acceptance[];
  /** Environment for migrations, assertions and commands (config file `env:`), e.g. NODE_ENV. */
  env: Record<string, string>;
  /** Severity per rule of the locks check (config file `lock-rules:`); warning by default. */
  lockRules: Partial<Record<LockRule, Severity | 'off'>>;
}

const SetKeys = [
  Inputs.MigrationsDir,
  Inputs.Format,
  Inputs.ListCommand,
  Inputs.UpCommand,
  Inputs.DownCommand,
  Inputs.ServeCommand,
  Inputs.HistoryTable,
  Inputs.AlembicCommand,
  Inputs.UrlVariable,
  Inputs.AssertionsDir,
  Inputs.AssertCommand,
  Inputs.SeedAfter,
  Inputs.SeedFile,
  Inputs.SeedCommand,
  Inputs.SnapshotFile,
  Inputs.ModelsCommand,
  'name',
] as const;
// Which file and which of its sets a run reads, where it writes JUnit, and the token, are the
// run's own, never the file's.
const TopKeys = Object.values(Inputs).filter(
  (k) => k !== Inputs.Config && k !== Inputs.GithubToken && k !== Inputs.Set && k !== Inputs.Junit,
);

/** How a key's value is read, for the config file's validator and its JSON Schema. */
type ValueKind =
  | { kind: 'text' }
  | { kind: 'choice'; values: readonly (string | number)[] }
  | { kind: 'boolean' }
  | { kind: 'duration' }
  | { kind: 'jobs' }
  | { kind: 'checks' };

const Text: ValueKind = { kind: 'text' };
/** Keys whose values are not free text; every other key is a string (a path, a command, a name). */
const ValueKinds: Partial<Record<string, ValueKind>> = {
  [Inputs.Format]: { kind: 'choice', values: Formats },
  [Inputs.Postgres]: { kind: 'choice', values: ProviderChoices },
  [Inputs.PostgresVersion]: { kind: 'choice', values: SupportedMajors },
  [Inputs.Scope]: { kind: 'choice', values: Scopes },
  [Inputs.FailOn]: { kind: 'choice', values: ['error', 'warning'] },
  [Inputs.UpdateSnapshot]: { kind: 'boolean' },
  [Inputs.Comment]: { kind: 'boolean' },
  [Inputs.RequireDown]: { kind: 'boolean' },
  [Inputs.AssertionsStrict]: { kind: 'boolean' },
  [Inputs.StepTimeout]: { kind: 'duration' },
  [Inputs.Jobs]: { kind: 'jobs' },
  [Inputs.Only]: { kind: 'checks' },
  [Inputs.Skip]: { kind: 'checks' },
};
const kindOf = (key: string): ValueKind => ValueKinds[key] ?? Text;

const BoolWords = ['true', 'false', 'yes', 'no', 'on', 'off'] as const;
const DurationPattern = '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|min|h)?\\s*$';
const checkAlternatives = `(${CheckIds.join('|')})`;
const ChecksPattern = `^\\s*${checkAlternatives}(\\s*[,\\s]\\s*${checkAlternatives})*\\s*$`;

/** What a value of this kind should look like, for messages. */
function expectedOf(kind: ValueKind): string {
  switch (kind.kind) {
    case 'choice':
      return `Allowed values: ${kind.values.join(', ')}.`;
    case 'boolean':
      return 'Allowed values: true, false.';
    case 'duration':
      return 'Expected a duration such as 300 (seconds), 90s, 5m or 1h.';
    case 'jobs':
      return "Expected 'auto' or a whole number of at least 1.";
    case 'checks':
      return `Expected check ids (a list, or one string separated by commas) out of ${CheckIds.join(', ')}.`;
    default:
      return 'Expected a string.';
  }
}

/** The validator of one key's value (its messages are replaced by `expectedOf`). */
function valueSchema(key: string): z.ZodType {
  const kind = kindOf(key);
  switch (kind.kind) {
    case 'choice': {
      const strings = kind.values.map(String) as [string, ...string[]];
      const numbers = kind.values.filter((v): v is number => typeof v === 'number');
      return numbers.length
        ? z.union([z.enum(strings), z.literal(numbers as [number, ...number[]])])
        : z.enum(strings);
    }
    case 'boolean':
      return z.union([z.boolean(), z.enum(BoolWords)]);
    case 'duration':
      return z.union([z.number().positive(), z.string().regex(new RegExp(DurationPattern))]);
    case 'jobs':
      return z.union([z.literal('auto'), z.number().int().min(1), z.string().regex(/^[1-9][0-9]*$/)]);
    case 'checks':
      return z.union([z.string().regex(new RegExp(ChecksPattern)), z.array(z.enum(CheckIds))]);
    default:
      // A number or a boolean where text is expected (a version as a name) is read as its text.
      return z.union([z.string(), z.number(), z.boolean()]);
  }
}

const setSchema = z.strictObject(Object.fromEntries(SetKeys.map((k) => [k, valueSchema(k).optional()])));
const acceptSchema = z.strictObject({
  id: z.string().min(1),
  reason: z.string().trim().min(1),
  check: z.enum(CheckIds).optional(),
  set: z.string().optional(),
  rule: z.string().optional(),
});
/** `lock-rules:` severity per rule of the locks check. */
const lockRulesSchema = z.strictObject(
  Object.fromEntries(LockRules.map((r) => [r, z.enum(['error', 'warning', 'off']).optional()])),
);
const scalar = z.union([z.string(), z.number(), z.boolean()]);
const configSchema = z.strictObject({
  ...Object.fromEntries(TopKeys.map((k) => [k, valueSchema(k).optional()])),
  sets: z.array(setSchema).optional(),
  accept: z.array(acceptSchema).optional(),
  env: z.record(z.string(), scalar).optional(),
  'lock-rules': lockRulesSchema.optional(),
});
type ConfigFile = z.infer<typeof configSchema>;

const AcceptKeys = ['id', 'reason', 'check', 'set', 'rule'];

const ConfigNames = ['pg-migrate-verify.yml', 'pg-migrate-verify.yaml'];

/** Reads and validates the config file: the given one, else pg-migrate-verify.yml in the working directory. */
export async function readConfigFile(
  workingDirectory: string,
  given?: string,
): Promise<{ file: string; config: ConfigFile } | undefined> {
  const file = given
    ? path.resolve(workingDirectory, given)
    : ConfigNames.map((n) => path.join(workingDirectory, n)).find((f) => existsSync(f));
  if (!file) return undefined;
  const shown = path.relative(workingDirectory, file) || file;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new CannotCheck(
      `Config file '${shown}' cannot be read (${messageOf(error)}). Check the path given to 'config'.`,
      { cause: error },
    );
  }
  let data: unknown;
  try {
    data = YAML.parse(text) ?? {};
  } catch (error) {
    throw new CannotCheck(`Config file '${shown}' is not valid YAML: ${messageOf(error).split('\n')[0]}`, {
      cause: error,
    });
  }
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at '${issue.path.join('.')}'` : '';
    if (issue?.code === 'unrecognized_keys') {
      const inSet = issue.path[0] === 'sets';
      const inAccept = issue.path[0] === 'accept';
      const inLocks = issue.path[0] === 'lock-rules';
      const allowed = inSet
        ? SetKeys
        : inAccept
          ? AcceptKeys
          : inLocks
            ? LockRules
            : [...TopKeys, 'sets', 'accept', 'env', 'lock-rules'];
      throw new CannotCheck(
        `Config file '${shown}' has unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}${where}. Allowed keys${inSet ? ' in a set' : inAccept ? " in an 'accept' entry" : inLocks ? " in 'lock-rules' (the rules of the locks check)" : ''}: ${allowed.join(', ')}.`,
      );
    }
    if (issue?.path[0] === 'lock-rules')
      throw new CannotCheck(
        `Config file '${shown}'${where}: ${issue.message}. Each rule in 'lock-rules' is error, warning or off.`,
      );
    if (issue?.path[0] === 'accept') {
      throw new CannotCheck(
        `Config file '${shown}'${where}: ${issue.message}. Each 'accept' entry needs 'id' (the migration id) and 'reason' (why the team accepts it); 'check' (default ordering) must be one of ${CheckIds.join(', ')}; 'set' is optional.`,
      );
    }
    // A value of a known key: the value and what it should be.
    const key = issue?.path.at(-1);
    const inKeys = issue?.path.length === 1 || (issue?.path[0] === 'sets' && issue.path.length === 3);
    if (typeof key === 'string' && inKeys && key !== 'sets' && key !== 'env') {
      const value = issue?.path.reduce<unknown>(
        (at, step) => (at as Record<string | number, unknown> | undefined)?.[step as string | number],
        data,
      );
      throw new CannotCheck(
        `Config file '${shown}'${issue?.path[0] === 'sets' ? ` at 'sets.${String(issue.path[1])}'` : ''}: '${key}' is ${JSON.stringify(value)}. ${expectedOf(kindOf(key))}`,
      );
    }
    throw new CannotCheck(
      `Config file '${shown}'${where}: ${issue?.message ?? 'invalid'}. Expected a mapping of the keys listed in the README.`,
    );
  }
  return { file: shown, config: parsed.data };
}

function stringOf(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}

function choice<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new CannotCheck(`Input '${key}' is '${value}'. Allowed values: ${allowed.join(', ')}.`);
}

function bool(key: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  const v = value.toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  throw new CannotCheck(`Input '${key}' is '${value}'. Allowed values: true, false.`);
}

/** `300`, `300s`, `5m`, `1h`, `1500ms` -> milliseconds. */
export function parseDuration(key: string, value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/i.exec(value);
  const amount = Number(match?.[1]);
  if (!match || !(amount > 0)) {
    throw new CannotCheck(
      `Input '${key}' is '${value}'. Expected a duration such as 300 (seconds), 90s, 5m or 1h.`,
    );
  }
  const unit = (match[2] ?? 's').toLowerCase();
  const factor = unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'h' ? 3_600_000 : 60_000;
  return Math.round(amount * factor);
}

function checkList(key: string, value: string | undefined): CheckId[] {
  if (!value?.trim()) return [];
  return value
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((id) => choice(key, id, CheckIds));
}

/** Where the run happens, for the defaults that depend on it. */
export interface RunContext {
  /**
   * False on a GitHub event that is no pull request (push, schedule, workflow_dispatch): a base
   * ref given there does not narrow the checks. True (the default) on the command line.
   */
  pullRequest?: boolean;
}

/**
 * `scope` as given, else `changed` when there is a base ref to compare with on a pull request (or
 * on the command line), else `all`.
 */
function scopeOf(value: string | undefined, baseRef: string | undefined, pullRequest: boolean): Scope {
  if (value) return choice(Inputs.Scope, value, Scopes);
  return baseRef && pullRequest ? 'changed' : 'all';
}

/** A top-level value: the input as given, else the config file's. */
type Getter = (key: (typeof TopKeys)[number]) => string | undefined;

/**
 * Resolves the settings: explicit inputs win over the config file, which wins over defaults.
 * Every bad value throws CannotCheck naming the key and the allowed values.
 */
export async function resolveSettings(
  raw: RawInputs,
  cwd: string = process.cwd(),
  context: RunContext = {},
): Promise<Settings> {
  const workingDirectory = path.resolve(cwd, raw[Inputs.WorkingDirectory] || '.');
  const loaded = await readConfigFile(workingDirectory, raw[Inputs.Config] || undefined);
  const config = loaded?.config ?? {};
  const get: Getter = (key) => {
    const given = raw[key];
    if (given !== undefined && given !== '') return given;
    return stringOf((config as Record<string, unknown>)[key]);
  };
  const all = config.sets?.length
    ? configSets(config, loaded?.file ?? '', raw, get, workingDirectory)
    : [singleSet(get, workingDirectory)];
  const sets = oneSet(all, raw[Inputs.Set] || undefined, loaded?.file);
  for (const a of config.accept ?? []) {
    if (a.set !== undefined && !all.some((s) => s.name === a.set))
      throw new CannotCheck(
        `Config file '${loaded?.file}': an 'accept' entry for '${a.id}' names set '${a.set}', which does not exist. Sets: ${all.map((s) => s.name).join(', ')}.`,
      );
  }
  return {
    sets,
    workingDirectory,
    postgres: choice(Inputs.Postgres, get(Inputs.Postgres) || 'auto', ProviderChoices),
    postgresVersion: majorOf(get(Inputs.PostgresVersion)),
    postgresImage: get(Inputs.PostgresImage),
    databaseUrl: get(Inputs.DatabaseUrl),
    baseRef: get(Inputs.BaseRef),
    scope: scopeOf(get(Inputs.Scope), get(Inputs.BaseRef), context.pullRequest ?? true),
    updateSnapshot: bool(Inputs.UpdateSnapshot, get(Inputs.UpdateSnapshot), false),
    targetDatabaseUrl: get(Inputs.TargetDatabaseUrl),
    comment: bool(Inputs.Comment, get(Inputs.Comment), true),
    githubToken: raw[Inputs.GithubToken] || undefined,
    failOn: choice(Inputs.FailOn, get(Inputs.FailOn) || 'error', ['error', 'warning'] as const),
    requireDown: bool(Inputs.RequireDown, get(Inputs.RequireDown), false),
    assertionsStrict: bool(Inputs.AssertionsStrict, get(Inputs.AssertionsStrict), true),
    stepTimeoutMs: get(Inputs.StepTimeout)
      ? parseDuration(Inputs.StepTimeout, get(Inputs.StepTimeout) ?? '')
      : Defaults.stepTimeoutMs,
    jobs: jobsOf(get(Inputs.Jobs)),
    ...(raw[Inputs.Set] ? { selectedSet: raw[Inputs.Set] } : {}),
    checks: checksOf(get),
    env: Object.fromEntries(Object.entries(config.env ?? {}).map(([k, v]) => [k, String(v)])),
    lockRules: (config['lock-rules'] ?? {}) as Settings['lockRules'],
    accepted: (config.accept ?? []).map((a) => ({
      id: a.id,
      reason: a.reason.trim(),
      check: a.check ?? 'ordering',
      ...(a.set !== undefined ? { set: a.set } : {}),
      ...(a.rule !== undefined ? { rule: a.rule } : {}),
    })),
  };
}

/**
 * `jobs` as given (`auto`: the machine's cores, at most 4; a number of at least 1), else `auto`.
 * Beyond 4 the ranges get short and each first applies every migration before it.
 */
function jobsOf(value: string | undefined): number {
  if (!value || value === 'auto') return Math.max(1, Math.min(4, os.availableParallelism()));
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new CannotCheck(
      `Input '${Inputs.Jobs}' is '${value}'. Expected 'auto' (the machine's cores, at most 4) or a whole number of at least 1, e.g. 1 to walk each set on one database.`,
    );
  return n;
}

/** The set `name` names (`set`: one job of a matrix over the sets), else all of them. */
function oneSet(sets: SetSettings[], name: string | undefined, file: string | undefined): SetSettings[] {
  if (name === undefined) return sets;
  const found = sets.filter((s) => s.name === name);
  if (found.length) return found;
  throw new CannotCheck(
    `Input '${Inputs.Set}' is '${name}', which is not a set ${file ? `of config file '${file}'` : '(there is no config file with sets)'}. Sets: ${sets.map((s) => s.name).join(', ')}. \`pg-migrate-verify sets\` lists them.`,
  );
}

/** The one set of a run without `sets:` in the config file. */
function singleSet(get: Getter, workingDirectory: string): SetSettings {
  const dir = get(Inputs.MigrationsDir) || 'migrations';
  return {
    name: dir,
    dir: path.resolve(workingDirectory, dir),
    format: formatOf(get(Inputs.Format)),
    ...commandsOf(
      get(Inputs.ListCommand),
      get(Inputs.UpCommand),
      get(Inputs.DownCommand),
      get(Inputs.ServeCommand),
      get(Inputs.Format),
    ),
    historyTables: tablesOf(get(Inputs.HistoryTable)),
    alembicCommand: get(Inputs.AlembicCommand),
    urlVariable: get(Inputs.UrlVariable),
    assertionsDir: resolvePath(workingDirectory, get(Inputs.AssertionsDir)),
    assertCommand: get(Inputs.AssertCommand),
    seed: seedOf(workingDirectory, get(Inputs.SeedAfter), get(Inputs.SeedFile), get(Inputs.SeedCommand)),
    snapshotFile: resolvePath(workingDirectory, get(Inputs.SnapshotFile)),
    modelsCommand: get(Inputs.ModelsCommand),
  };
}

/** The sets the config file lists; a set's own keys win over the top-level ones. */
function configSets(
  config: ConfigFile,
  file: string,
  raw: RawInputs,
  get: Getter,
  workingDirectory: string,
): SetSettings[] {
  if (raw[Inputs.MigrationsDir]) {
    throw new CannotCheck(
      `Input '${Inputs.MigrationsDir}' is '${raw[Inputs.MigrationsDir]}', but config file '${file}' lists 'sets'. Use one or the other.`,
    );
  }
  const sets = (config.sets ?? []).map((s, i): SetSettings => {
    const value = (key: string) => stringOf(s[key]);
    const dir = value(Inputs.MigrationsDir);
    if (!dir)
      throw new CannotCheck(
        `Config file '${file}': set ${i + 1} has no '${Inputs.MigrationsDir}'. Give each set its folder.`,
      );
    const name = value('name') ?? dir;
    return {
      name,
      dir: path.resolve(workingDirectory, dir),
      format: formatOf(value(Inputs.Format)),
      ...commandsOf(
        value(Inputs.ListCommand),
        value(Inputs.UpCommand),
        value(Inputs.DownCommand),
        value(Inputs.ServeCommand),
        value(Inputs.Format),
      ),
      historyTables: tablesOf(value(Inputs.HistoryTable)),
      alembicCommand: value(Inputs.AlembicCommand) ?? get(Inputs.AlembicCommand),
      urlVariable: value(Inputs.UrlVariable) ?? get(Inputs.UrlVariable),
      assertionsDir: resolvePath(workingDirectory, value(Inputs.AssertionsDir)),
      assertCommand: value(Inputs.AssertCommand) ?? get(Inputs.AssertCommand),
      seed: seedOf(
        workingDirectory,
        value(Inputs.SeedAfter),
        value(Inputs.SeedFile),
        value(Inputs.SeedCommand),
        `set '${name}'`,
      ),
      snapshotFile: resolvePath(workingDirectory, value(Inputs.SnapshotFile)),
      modelsCommand: value(Inputs.ModelsCommand),
    };
  });
  const names = sets.map((s) => s.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice)
    throw new CannotCheck(
      `Config file '${file}' has two sets named '${twice}'. Give each set its own 'name'.`,
    );
  return sets;
}

function formatOf(value: string | undefined): Format {
  return choice(Inputs.Format, value || 'auto', Formats);
}

function resolvePath(workingDirectory: string, value: string | undefined): string | undefined {
  return value ? path.resolve(workingDirectory, value) : undefined;
}

/** `history-table` entries as `schema.table` (public by default). */
function tablesOf(value: string | undefined): string[] {
  return (value ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((t) => (t.includes('.') ? t : `public.${t}`));
}

/** The runner's commands of `format: command`; refused for other formats, where they would be ignored. */
function commandsOf(
  list: string | undefined,
  up: string | undefined,
  down: string | undefined,
  serve: string | undefined,
  chosen: string | undefined,
): { commands?: SetSettings['commands'] } {
  if (chosen !== 'command') {
    const stray = (
      [
        [Inputs.ListCommand, list],
        [Inputs.UpCommand, up],
        [Inputs.DownCommand, down],
        [Inputs.ServeCommand, serve],
      ] as const
    ).find(([, v]) => v);
    if (stray)
      throw new CannotCheck(
        `Input '${stray[0]}' is set, but '${Inputs.Format}' is '${chosen ?? 'auto'}'. Set ${Inputs.Format}: command to run migrations through your own commands.`,
      );
    return {};
  }
  if (!list || !up)
    throw new CannotCheck(
      `Input '${Inputs.Format}' is 'command', but '${!list ? Inputs.ListCommand : Inputs.UpCommand}' is not set. Give '${Inputs.ListCommand}' (prints migration ids in order), '${Inputs.UpCommand}' and '${Inputs.DownCommand}' (with {id}).`,
    );
  return { commands: { list, up, ...(down ? { down } : {}), ...(serve ? { serve } : {}) } };
}

/** Seed data: `seed-after` with exactly one of `seed-file` and `seed-command`. */
function seedOf(
  workingDirectory: string,
  after: string | undefined,
  file: string | undefined,
  command: string | undefined,
  where = '',
): Seed | undefined {
  const scope = where ? ` (${where})` : '';
  if (!after && !file && !command) return undefined;
  if (file && command)
    throw new CannotCheck(
      `Inputs '${Inputs.SeedFile}' and '${Inputs.SeedCommand}' are both set${scope}. Give one: an SQL file, or a command that loads the rows.`,
    );
  if (!file && !command)
    throw new CannotCheck(
      `Input '${Inputs.SeedAfter}' is '${after}'${scope}, but there is no seed. Set '${Inputs.SeedFile}' (an SQL file) or '${Inputs.SeedCommand}'.`,
    );
  if (!after)
    throw new CannotCheck(
      `Input '${file ? Inputs.SeedFile : Inputs.SeedCommand}' is set${scope}, but '${Inputs.SeedAfter}' is not. Set it to the id of the migration after which the seed's tables exist.`,
    );
  return { after, ...(file ? { file: path.resolve(workingDirectory, file) } : { command }) };
}

function majorOf(version: string | undefined): number | undefined {
  if (!version) return undefined;
  const major = Number(version);
  if (!(SupportedMajors as readonly number[]).includes(major))
    throw new CannotCheck(
      `Input '${Inputs.PostgresVersion}' is '${version}'. Allowed values: ${SupportedMajors.join(', ')}.`,
    );
  return major;
}

/** The checks to run: `only` (all by default) without `skip`. */
function checksOf(get: Getter): Set<CheckId> {
  const only = checkList(Inputs.Only, get(Inputs.Only));
  const skip = checkList(Inputs.Skip, get(Inputs.Skip));
  return new Set<CheckId>((only.length ? only : CheckIds).filter((c) => !skip.includes(c)));
}

/**
 * The JSON Schema of the config file, generated from the validator that reads it (so that an
 * editor and the tool cannot disagree), with each key's description from `describe`.
 */
export function configJsonSchema(describe: (key: string) => string | undefined): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { target: 'draft-7', unrepresentable: 'any' }) as Record<
    string,
    unknown
  > & { properties: Record<string, Record<string, unknown>> };
  const described = (properties: Record<string, Record<string, unknown>>) => {
    for (const [key, property] of Object.entries(properties)) {
      const text = describe(key);
      if (text) property.description = text;
    }
  };
  described(schema.properties);
  const sets = schema.properties.sets as { items: { properties: Record<string, Record<string, unknown>> } };
  described(sets.items.properties);
  return {
    $schema: schema.$schema,
    title: 'pg-migrate-verify.yml',
    description:
      'Configuration of pg-migrate-verify: the same keys as the Action inputs and CLI flags, and several migration sets for monorepos.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}
