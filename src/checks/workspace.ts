import pg from 'pg';
import { installLockTrace, lockTraceRider, loggedLocks, SwitchOnSql } from '../catalog/locks.js';
import {
  CatalogTracker,
  type Exclusions,
  type Expected,
  type PrintCheck,
  type Rider,
  type Taken,
  type TakenRow,
  taken,
} from '../catalog/tracker.js';
import type { AssertionRun, Side } from '../core/assertions.js';
import { type StepTrace, stepTrace } from '../core/locks.js';
import { type FailedStep, Runner, type StepOutcome } from '../migrations/runner.js';
import type { Migration } from '../migrations/types.js';
import { CatalogSessionName, cancelQueries, endSessions } from '../postgres/databases.js';
import type { ScratchDatabase } from '../postgres/types.js';
import { type Assertion, AssertionRunner } from './assertions.js';
import type { SetContext } from './context.js';
import type { MigrationRecord } from './record.js';
import { applySeed } from './seed.js';

/** Steps sent many to a round trip (`Workspace.sendSteps`), read back one by one (`stepAfter`). */
export interface SentSteps {
  rider: Rider | undefined;
  stepped: Promise<{ ms: number; xid: string; followed?: pg.QueryResult }[] | undefined>;
  expects: readonly Expected[] | undefined;
  /** Each step's group: the first and last step of the steps one take after the last reads. */
  groups: readonly { first: number; last: number }[];
  /** Each group's take told apart by step, once read (undefined: it cannot be). */
  parts: Map<number, Taken[] | undefined>;
}

/**
 * The steps of a round trip, in groups that one take after the last of them can read together:
 * steps whose `reach` (the names or roots each may touch; undefined: not known) share nothing.
 * A step whose reach is not known is read alone.
 */
function groupSteps(count: number, reach?: readonly (ReadonlySet<string> | undefined)[]) {
  const groups: { first: number; last: number }[] = [];
  let first = 0;
  let seen = new Set<string>();
  const close = (last: number) => {
    if (last < first) return;
    for (let k = first; k <= last; k++) groups[k] = { first, last };
    first = last + 1;
    seen = new Set();
  };
  for (let k = 0; k < count; k++) {
    const set = reach?.[k];
    if (!set) {
      close(k - 1);
      close(k);
      continue;
    }
    for (const name of set) if (seen.has(name)) close(k - 1);
    for (const name of set) seen.add(name);
  }
  close(count - 1);
  return groups;
}

/** What every scratch database of one walk is made from. */
export interface WorkspacePlan {
  ctx: SetContext;
  migrations: readonly Migration[];
  exclusions: Exclusions;
  /** Assertions by migration id, when the assertions check runs. */
  assertions?: Map<string, Assertion[]>;
  /** The index of the migration after which the seed applies, when there is a seed. */
  seedIndex?: number;
  /** Where rebuilds keep the state they made, for the next rebuild to start from. */
  checkpoints?: Checkpoints;
  /** How many migrations the walk checks on it (full reads print every root from `PrintAllFrom`). */
  walked?: number;
  /**
   * Other ranges of the walk run beside this one, and use the cores: the catalog session does not
   * warm up while the migrations before the range apply (see `Readying`).
   */
  beside?: boolean;
}

/**
 * Checking this many migrations, the prints of every root (in each full read) cost less than the
 * families read for the roots their down steps touch first (bench: ~60 ms for 1000 migrations'
 * schema, against ~1.5 ms a root).
 */
const PrintAllFrom = 50;

/** A database with the first `count` migrations applied (the seed in, when `seeded`); no one is connected. */
interface Checkpoint {
  count: number;
  seeded: boolean;
  db: ScratchDatabase;
}

/**
 * The state the last rebuild made, kept as a database no one connects to, so that the next
 * rebuild (a walk only moves forward) copies it and replays only the migrations since, instead of
 * every one from the first. Copying a database is a matter of milliseconds; replaying a long
 * history, of seconds (per step, for a format that runs a process or an interpreter).
 */
export class Checkpoints {
  private last: Checkpoint | undefined;

  /** The checkpoint to start a state of `count` migrations from, if there is one. */
  nearest(count: number): Checkpoint | undefined {
    return this.last && this.last.count <= count ? this.last : undefined;
  }

  async keep(checkpoint: Checkpoint): Promise<void> {
    const old = this.last;
    this.last = checkpoint;
    if (old && old !== checkpoint) await old.db.drop().catch(() => {});
  }

  async dropAll(): Promise<void> {
    const old = this.last;
    this.last = undefined;
    await old?.db.drop().catch(() => {});
  }
}

/** A runner on a database of the set's server, with our timeout, cancel and health. */
export function runnerFor(ctx: SetContext, db: ScratchDatabase): Runner {
  const { server } = ctx;
  return new Runner({
    databaseUrl: db.url,
    ...(db.localUrl ? { localUrl: db.localUrl } : {}),
    timeoutMs: ctx.stepTimeoutMs,
    cancel: () => cancelQueries(server.adminUrl, db.name),
    health: () => server.health(),
    serverName: `PostgreSQL ${server.version} (${server.provider})`,
    now: () => ctx.now(),
  });
}

/**
 * What the steps after a refresh are, for the locks check: the steps of a new migration (traced;
 * the tables there are now are the ones it finds), more steps of the same migration (its down step
 * after its up: traced), or steps whose locks nobody reads (off: up again, rolling back, replays).
 */
export type NextSteps = 'migration' | 'same' | 'off';

/** What applying migrations without checks (before a walk, or to rebuild) came to. */
export interface Prepared {
  /** The first that did not apply, and its outcome; the ones after it did not run. */
  failed?: FailedStep;
  /** The seed went in among them; `error` says why it failed, when it did. */
  seed?: { error?: string };
}

/** A first guess of what a read that readies the catalog session costs, ms (bench: 80-200 for 500 tables). */
const WarmUpGuessMs = 150;

/**
 * Readies the catalog session while the migrations before a walk apply in the migrations'
 * session (`applied`, once for each): installs the tracker's functions and plans its takes; on a
 * long replay, it also reads everything, thrown away, once or more in its second half (as long as
 * one read still fits before the end), so that the full read after the replay finds the session's
 * caches warm (bench, 1000 migrations: 150-200 ms cold, about 80 ms warm). Those reads lock nothing
 * a migration could wait for (see `CatalogTracker.warmUp`).
 */
export class Readying {
  /** What the tracker's install found: 'full' where event triggers are not allowed. */
  readonly installed: Promise<'incremental' | 'full'>;
  private done = 0;
  private warming: Promise<void> | undefined;
  private lastMs = WarmUpGuessMs;
  private stopped = false;
  /** A warming read is on the session now. */
  private reading = false;
  private pid: number | undefined;
  private readonly started: number;

  constructor(
    private readonly catalog: pg.Client,
    connected: Promise<unknown>,
    private readonly exclusions: Exclusions,
    private readonly printAll: boolean,
    /** How many migrations the replay applies; 0: read nothing ahead, whatever it applies. */
    private readonly total: number,
    private readonly now: () => number,
  ) {
    this.started = now();
    this.installed = connected.then(async () => {
      const { rows } = await catalog.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      this.pid = rows[0]?.pid;
      const mode = await CatalogTracker.install(catalog);
      if (mode === 'incremental') await CatalogTracker.planTakes(catalog, exclusions);
      return mode;
    });
    // Awaited when the replay is over; a failure meanwhile must not count as one nobody handled.
    this.installed.catch(() => {});
  }

  /** One more migration applied. */
  applied(): void {
    this.done++;
    this.warmUp();
  }

  /** Starts a warming read if none runs, past half the replay, when the rest will outlast it. */
  private warmUp(): void {
    if (this.stopped || this.warming || !this.total || this.done * 2 < this.total) return;
    // The last read before the end is the one that counts: each costs CPU the replay could use.
    const left = ((this.now() - this.started) / this.done) * (this.total - this.done);
    if (left < this.lastMs * 1.3 || left > this.lastMs * 3) return;
    this.warming = this.installed
      .then(async () => {
        if (this.stopped) return;
        const at = this.now();
        this.reading = true;
        try {
          await CatalogTracker.warmUp(this.catalog, this.exclusions, this.printAll);
          this.lastMs = this.now() - at;
        } finally {
          this.reading = false;
        }
      })
      .catch(() => {})
      .finally(() => {
        this.warming = undefined;
        this.warmUp();
      });
  }

  /**
   * The replay is over: no more warming, and a read still running is cancelled through `other` (a
   * session on the same database; a cancel that arrives when the read is over finds the session
   * idle, and is dropped there).
   */
  async finish(other: pg.Client): Promise<void> {
    this.stopped = true;
    const running = this.warming;
    if (!running) return;
    // Only while the read itself runs: nothing else is sent on the session until it has ended, so
    // the cancel can find no other statement (the install, say, or the full read after it).
    if (this.reading && this.pid !== undefined)
      await other.query('SELECT pg_cancel_backend($1)', [this.pid]).catch(() => {});
    await running;
  }
}

/** A scratch database with its runner, its catalog tracker and its assertion runner. */
export class Workspace {
  /** One per database, so that each assertion module is loaded once. */
  private asserter?: AssertionRunner;
  /** True when the steps' locks and rewrites are traced (the locks check, with event triggers allowed). */
  tracing = false;
  /** Whether the triggers record the steps that run now (the switch in the database). */
  private traced = true;

  private constructor(
    readonly plan: WorkspacePlan,
    readonly db: ScratchDatabase,
    readonly runner: Runner,
    /** Catalog reads go through their own session: nothing of ours runs in the migrations' session. */
    readonly catalog: pg.Client,
    readonly tracker: CatalogTracker,
  ) {}

  static async create(plan: WorkspacePlan): Promise<Workspace> {
    return (await Workspace.prepare(plan, 0, false)).ws;
  }

  /**
   * A fresh database with the first `count` migrations applied without checks (what a target or a
   * base branch has; a rebuild), the seed among them where it goes (after its migration; after the
   * last of them only with `seedAtEnd`). They run before the catalog is tracked: no trigger fires
   * for them, and the one full read that starts the tracking follows them.
   */
  static async prepare(
    plan: WorkspacePlan,
    count: number,
    seedAtEnd: boolean,
    from?: Checkpoint,
  ): Promise<{ ws: Workspace } & Prepared> {
    const db = await plan.ctx.server.createDatabase(from ? { template: from.db.name } : undefined);
    const runner = runnerFor(plan.ctx, db);
    const prepared: Prepared = {};
    const catalog = new pg.Client({
      connectionString: db.localUrl ?? db.url,
      // A step's timeout cancels the queries on the database, never this session's.
      application_name: CatalogSessionName,
    });
    catalog.on('error', () => {});
    // The catalog session connects while the migrations' session opens and applies the first ones.
    const connected = catalog.connect();
    connected.catch(() => {});
    try {
      await runner.open();
      const printAll = (plan.walked ?? 0) >= PrintAllFrom;
      const readying = new Readying(
        catalog,
        connected,
        plan.exclusions,
        printAll,
        // Beside other ranges, no warming: they use the cores.
        plan.beside ? 0 : count - (from?.count ?? 0),
        () => plan.ctx.now(),
      );
      try {
        Object.assign(
          prepared,
          await applyFirst(plan, runner, db, from, count, seedAtEnd, () => readying.applied()),
        );
      } finally {
        await readying.finish(runner.connection);
      }
      await connected;
      const installed = await readying.installed;
      const opening = CatalogTracker.open(catalog, plan.exclusions, printAll, installed);
      // The migrations' session plans its takes meanwhile: a step's take runs there, after it.
      const planning =
        installed === 'incremental' && !prepared.failed
          ? CatalogTracker.planTakes(runner.connection, plan.exclusions).catch(() => {})
          : undefined;
      const ws = new Workspace(plan, db, runner, catalog, await opening);
      await planning;
      if (plan.ctx.checks.has('locks') && ws.tracker.mode === 'incremental')
        ws.tracing = await installLockTrace(catalog, plan.seedIndex !== undefined);
      return { ws, ...prepared };
    } catch (error) {
      await catalog.end().catch(() => {});
      await runner.close();
      await db.drop().catch(() => {});
      throw error;
    }
  }

  /**
   * A fresh database with migrations 0..upTo applied (and the seed where it went the first time; a
   * failing seed was reported then); undefined when that fails.
   */
  async rebuild(upTo: number): Promise<Workspace | undefined> {
    const { plan } = this;
    const count = upTo + 1;
    const { checkpoints } = plan;
    let from = checkpoints?.nearest(count);
    if (checkpoints && from?.count !== count) {
      from = await checkpointOf(plan, from, count);
      if (!from) return undefined;
      await checkpoints.keep(from);
    }
    // The walk loads the seed itself when it goes right after migration upTo.
    const { ws, failed } = await Workspace.prepare(plan, count, false, from);
    if (!failed) return ws;
    await ws.close();
    return undefined;
  }

  /** Whether the migration has assertions to run here. */
  asserts(record: MigrationRecord): boolean {
    return !!this.plan.assertions?.get(record.migration.id)?.length;
  }

  /** Runs the migration's assertions on this database as it is now, and keeps the runs in its report. */
  async assert(record: MigrationRecord, side: Side): Promise<void> {
    const list = this.plan.assertions?.get(record.migration.id);
    if (!list?.length) return;
    const { ctx } = this.plan;
    this.asserter ??= new AssertionRunner({
      databaseUrl: this.db.url,
      timeoutMs: ctx.stepTimeoutMs,
      command: ctx.assertCommand,
      workingDirectory: ctx.workingDirectory,
      env: ctx.env,
    });
    const runs: AssertionRun[] = [];
    for (const a of list) runs.push(await this.asserter.run(a, side));
    record.report.assertions = [...(record.report.assertions ?? []), ...runs];
  }

  /**
   * Brings the catalog tracker up to date and, when tracing, takes the locks and rewrites of the
   * steps since the last refresh, in the same round trip; `next` says what the steps after this
   * call are (see `NextSteps`); 'none': no more steps, nor prints to compare.
   */
  async refresh(next: NextSteps | 'none' = 'migration'): Promise<StepTrace> {
    const after = next === 'none' ? 'off' : next;
    const rider = this.riderFor(after);
    return this.traceOf(
      after,
      rider,
      await this.tracker.refresh(this.catalog, rider, undefined, next !== 'none'),
    );
  }

  /**
   * Runs one step of a migration and brings the tracker up to date after it, as `refresh(next)`
   * would, in the step's own round trip where the format allows (SQL in a transaction of ours): the
   * catalog is read by a function of ours right after the step's COMMIT, in the session that ran it.
   * With `expect` (prints of roots, as a mark kept them), the step must give those roots back and
   * leave every other root it touches as it was: the take reads only prints, and the families are
   * read only when they differ (`check`). A step that fails is not followed by a refresh: the
   * caller does what it does after a failure.
   */
  async step(
    direction: 'up' | 'down',
    migration: Migration,
    next: NextSteps,
    expect?: Expected,
  ): Promise<{ outcome: StepOutcome; trace?: StepTrace; check?: PrintCheck }> {
    const { tracker, runner } = this;
    const incremental = tracker.mode === 'incremental';
    const rider = incremental ? this.riderFor(next) : undefined;
    const take = incremental
      ? tracker.takeSql(expect ? 'prints' : 'details', expect ? [...expect.keys()] : [], rider)
      : undefined;
    const outcome =
      direction === 'up'
        ? await runner.up(migration, take ? [take] : undefined)
        : await runner.down(migration, take ? [take] : undefined);
    if (!outcome.ok) return { outcome };
    let ridden: Taken | undefined;
    const rows = outcome.followed?.[0]?.rows;
    if (rows) {
      ridden = taken(rows);
      // The step's time is its own: the reads that rode on its round trip are left out.
      outcome.ms = Math.max(0, outcome.ms - CatalogTracker.elapsed(ridden));
    }
    if (!expect || !take) {
      const values = await tracker.refresh(this.catalog, rider, ridden);
      return { outcome, trace: this.traceOf(next, rider, values) };
    }
    const check = await tracker.checkPrints(this.catalog, expect, rider, ridden);
    return { outcome, trace: this.traceOf(next, rider, check.rider), check };
  }

  /**
   * Whether the migration's step can travel with others in a round trip of many (see `sendSteps`):
   * SQL in a transaction of ours, no assertions around it.
   */
  travels(record: MigrationRecord, direction: 'up' | 'down'): boolean {
    return (
      this.tracker.mode === 'incremental' &&
      !this.asserts(record) &&
      this.runner.batchText(record.migration, direction) !== undefined
    );
  }

  /**
   * Sends the steps of `migrations` in one direction many to a round trip, each followed by its
   * take, as `step` runs each with a new migration after it ('migration'): up steps read what they
   * touched, down steps the prints of `expects[k]`. Nothing is read between them: `stepAfter` takes
   * each step's part, in order. Tracing must be on for the steps (as it is after a migration).
   */
  sendSteps(
    direction: 'up' | 'down',
    migrations: readonly Migration[],
    expects?: readonly Expected[],
    reach?: readonly (ReadonlySet<string> | undefined)[],
  ): SentSteps {
    const rider = this.riderFor('migration');
    const groups = groupSteps(migrations.length, reach);
    const takes = migrations.map((_, k) => {
      const group = groups[k] as { first: number; last: number };
      if (group.last !== k) return undefined;
      if (!expects) return this.tracker.takeSql('details', [], rider);
      const extra = new Set<string>();
      for (let i = group.first; i <= k; i++) for (const root of expects[i]?.keys() ?? []) extra.add(root);
      return this.tracker.takeSql('prints', [...extra], rider);
    });
    // A step read with the ones after it switches tracing on for the next itself.
    const stepped = this.runner.stepsFollowed(direction, migrations, takes, rider?.switch ? SwitchOnSql : '');
    // Awaited later: a failure meanwhile must not count as one nobody handled.
    stepped.catch(() => {});
    return { rider, stepped, expects, groups, parts: new Map() };
  }

  /**
   * The k-th step of steps sent together, as `step` gives it: its outcome and trace, and with
   * `expect` the verdict of its prints. Undefined when the round trip failed, or the step's take is
   * not enough without a read (which would see the steps after it), or it cannot be told apart from
   * the steps read with it, or its prints did not hold: the caller gives up on this database.
   */
  async stepAfter(
    sent: SentSteps,
    k: number,
  ): Promise<{ outcome: StepOutcome; trace: StepTrace; check?: PrintCheck } | undefined> {
    const steps = await sent.stepped;
    const step = steps?.[k];
    const group = sent.groups[k];
    if (!steps || !step || !group) return undefined;
    const ridden = this.partOf(sent, steps, group, k);
    if (!ridden) return undefined;
    // Each step's time is its own: a take after the step before it is left out.
    const previous = steps[k - 1]?.followed;
    const lead = previous ? CatalogTracker.elapsed(taken(previous.rows as TakenRow[])) : 0;
    const outcome: StepOutcome = { ok: true, ms: Math.max(0, step.ms - lead), notices: [] };
    const expect = sent.expects?.[k];
    if (expect) {
      const check = this.tracker.printsHoldAfter(expect, ridden);
      if (!check) return undefined;
      return { outcome, trace: this.traceOf('migration', sent.rider, check.rider), check };
    }
    const values = this.tracker.absorbAfter(ridden);
    if (!values) return undefined;
    return { outcome, trace: this.traceOf('migration', sent.rider, values) };
  }

  /** The k-th step's part of the take that read its group. */
  private partOf(
    sent: SentSteps,
    steps: readonly { xid: string; followed?: pg.QueryResult }[],
    group: { first: number; last: number },
    k: number,
  ): Taken | undefined {
    const rows = steps[group.last]?.followed?.rows as TakenRow[] | undefined;
    if (!rows) return undefined;
    if (group.first === group.last) return taken(rows);
    if (!sent.parts.has(group.first)) {
      const xids = steps.slice(group.first, group.last + 1).map((s) => s.xid);
      const expects = sent.expects?.slice(group.first, group.last + 1);
      sent.parts.set(group.first, this.tracker.splitTake(taken(rows), xids, expects));
    }
    return sent.parts.get(group.first)?.[k - group.first];
  }

  /** What takes the locks logged since the last refresh and switches tracing for `next` (see `refresh`). */
  private riderFor(next: NextSteps): Rider | undefined {
    if (!this.tracing) return undefined;
    // Steps that ran untraced logged nothing to take. The switch is written twice per migration:
    // off for up again, then on, from the relations there are, for the next migration.
    const on = next !== 'off';
    return lockTraceRider(this.traced, next === 'migration' || on !== this.traced ? on : undefined);
  }

  /** The locks and rewrites the take's rider took; tracing is now as `next` wants it. */
  private traceOf(next: NextSteps, rider: Rider | undefined, values: unknown[]): StepTrace {
    if (!rider) return { locks: [], rewrites: [] };
    this.traced = next !== 'off';
    return stepTrace(loggedLocks(values), this.plan.exclusions.tables);
  }

  /** Loads the seed data; returns why it failed, or undefined. `next`: what the steps after it are. */
  async seed(next: NextSteps = 'migration'): Promise<string | undefined> {
    const { ctx } = this.plan;
    if (!ctx.seed) return undefined;
    const error = await applySeed(ctx.seed, this.db.url, {
      workingDirectory: ctx.workingDirectory,
      timeoutMs: ctx.stepTimeoutMs,
      env: ctx.env,
    });
    // A seed that creates objects (or locks tables) must not count as the next migration's doing.
    await this.refresh(next);
    return error;
  }

  async close(): Promise<void> {
    await Promise.all([this.catalog.end().catch(() => {}), this.runner.close()]);
    await this.db.drop().catch(() => {});
  }
}

/**
 * Applies the migrations from `from` (a checkpoint's state, or none) to the first `count`, many to a
 * round trip, with the seed where it goes (after the last of them only with `seedAtEnd`).
 */
async function applyFirst(
  plan: WorkspacePlan,
  runner: Runner,
  db: ScratchDatabase,
  from: Checkpoint | undefined,
  count: number,
  seedAtEnd: boolean,
  applied?: () => void,
): Promise<Prepared> {
  const { ctx, seedIndex } = plan;
  const start = from?.count ?? 0;
  // The copy holds what those migrations did, and their bookkeeping rows.
  if (start) runner.assumeApplied(plan.migrations.slice(0, start).map((m) => m.id));
  const seeded =
    !from?.seeded &&
    seedIndex !== undefined &&
    (seedIndex < count - 1 || (seedAtEnd && seedIndex === count - 1));
  const split = seeded ? Math.max(start, seedIndex + 1) : count;
  const failed = await runner.upMany(plan.migrations.slice(start, split), applied);
  if (failed || !seeded || !ctx.seed) return failed ? { failed } : {};
  const error = await applySeed(ctx.seed, db.url, {
    workingDirectory: ctx.workingDirectory,
    timeoutMs: ctx.stepTimeoutMs,
    env: ctx.env,
  });
  const rest = await runner.upMany(plan.migrations.slice(split, count), applied);
  return { seed: error ? { error } : {}, ...(rest ? { failed: rest } : {}) };
}

/**
 * A checkpoint of the first `count` migrations: a copy of `from` (or an empty database) with the
 * rest replayed, every session on it ended; undefined when a migration fails.
 */
async function checkpointOf(
  plan: WorkspacePlan,
  from: Checkpoint | undefined,
  count: number,
): Promise<Checkpoint | undefined> {
  const { server } = plan.ctx;
  const db = await server.createDatabase(from ? { template: from.db.name } : undefined);
  const runner = runnerFor(plan.ctx, db);
  let made: Prepared;
  try {
    await runner.open();
    made = await applyFirst(plan, runner, db, from, count, false);
  } catch (error) {
    await runner.close();
    await db.drop().catch(() => {});
    throw error;
  }
  await runner.close();
  if (made.failed) {
    await db.drop().catch(() => {});
    return undefined;
  }
  // A copy needs a database no one is connected to: a format's pool may still hold one.
  await endSessions(server.adminUrl, db.name);
  return { count, seeded: !!from?.seeded || made.seed !== undefined, db };
}
