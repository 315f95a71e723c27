import pg from 'pg';
import { BookkeepingSchema } from '../core/bookkeeping.js';
import { CannotCheck, messageOf } from '../core/errors.js';
import { lostConnection, missingExtension } from '../core/faults.js';
import { formatDuration } from '../core/format.js';
import type { ServerFault } from '../postgres/types.js';
import { driverErrorDetail } from './sql.js';
import type { Migration, StepContext, StepNotice } from './types.js';
import { StepError } from './types.js';

/**
 * Records applied ids in the database under test, so that the state lives with the data, and
 * mirrors them in memory: asking the database before every step would cost a round trip a step.
 */
class TableStorage {
  private readonly applied = new Set<string>();
  async logMigration(name: string, context: StepContext): Promise<void> {
    if (!context.recorded)
      await context.client.query(`INSERT INTO ${BookkeepingSchema}.applied (id) VALUES ($1)`, [name]);
    this.applied.add(name);
  }
  async unlogMigration(name: string, context: StepContext): Promise<void> {
    if (!context.recorded)
      await context.client.query(`DELETE FROM ${BookkeepingSchema}.applied WHERE id = $1`, [name]);
    this.applied.delete(name);
  }
  has(id: string): boolean {
    return this.applied.has(id);
  }
  /** Ids whose up step ran and recorded itself in a round trip of many (a replay). */
  ran(ids: readonly string[]): void {
    for (const id of ids) this.applied.add(id);
  }
  /** Ids whose down step ran and removed its record in a round trip of many. */
  unran(ids: readonly string[]): void {
    for (const id of ids) this.applied.delete(id);
  }
}

/** What an error wraps (`cause`), or the error itself. */
function causeOf(error: unknown): unknown {
  return (error as { cause?: unknown }).cause ?? error;
}

/** The column the server's clock comes back in, in a round trip of many steps. */
const StepClock = 'pgmv_step_clock';

/** The server's clock, ms, in the column `StepClock`: a round trip of many steps times each from it. */
const ClockSql = `extract(epoch FROM clock_timestamp()) * 1000 AS ${StepClock}`;

/** The column a step's transaction id comes back in, beside its clock. */
const StepXid = 'pgmv_step_xid';

/** A step's own bookkeeping, sent with its text: an up step records its id, a down step removes it. */
function bookkeepingSql(direction: 'up' | 'down', id: string): string {
  return direction === 'up'
    ? `INSERT INTO ${BookkeepingSchema}.applied (id) VALUES (${literal(id)})`
    : `DELETE FROM ${BookkeepingSchema}.applied WHERE id = ${literal(id)}`;
}

/** Up to this many steps, or this much text, travel in one query string when only applied. */
const BatchSteps = 100;
const BatchBytes = 1 << 20;

/** An SQL string literal (standard_conforming_strings is on since Postgres 9.1). */
function literal(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export interface StepOutcome {
  ok: boolean;
  ms: number;
  error?: StepError;
  timedOut?: boolean;
  /** What the step said besides its result (work it did not await, a history table it dropped). */
  notices: StepNotice[];
  /** The results of the statements that followed the step in its round trip (see `up`), when they ran. */
  followed?: pg.QueryResult[];
}

/**
 * Promises a migration starts and does not await can reject after nothing waits for them any more;
 * without a listener Node would end the process with a stack trace. One listener for the process
 * hands them to the step that is running, or to the next one.
 */
const strays: unknown[] = [];
let listening = false;
function collectUnhandledRejections(): void {
  if (listening) return;
  listening = true;
  process.on('unhandledRejection', (reason) => {
    strays.push(reason);
  });
}

/** What a step left behind on the driver's queue: queries sent on our own client and not awaited. */
function clientBusy(client: pg.Client | undefined): boolean {
  const inner = client as unknown as { _activeQuery?: unknown; _queryQueue?: unknown[] } | undefined;
  return !!inner?._activeQuery || (inner?._queryQueue?.length ?? 0) > 0;
}

/** A migration whose step failed, and how. */
export interface FailedStep {
  migration: Migration;
  outcome: StepOutcome;
}

export interface RunnerOptions {
  databaseUrl: string;
  /** The same database for the runner's own session (the server's Unix socket), when there is one. */
  localUrl?: string;
  /** Stop a step after this long. */
  timeoutMs: number;
  /** Cancels whatever the step is running on the server (called on timeout). */
  cancel: () => Promise<void>;
  /** Asked after a step fails: a server that died or restarted is not the migration's fault. */
  health?: () => Promise<ServerFault | undefined>;
  /** The server, for messages: `PostgreSQL 15.18 (binaries)`. */
  serverName?: string;
  now?: () => number;
}

/**
 * Runs single migrations up or down on one database. Every format plugs in here with its own
 * `Migration` objects, so bookkeeping, timeouts and environment faults are the same for all. (A
 * runner library such as umzug would add a scan of the whole list to every step: at a thousand
 * migrations walked three steps each, that was most of our own time.)
 */
export class Runner {
  private client: pg.Client | undefined;
  private abort = new AbortController();
  private readonly storage = new TableStorage();
  private readonly shared = new Map<string, unknown>();
  private readonly releases: (() => Promise<void>)[] = [];
  private readonly probes: (() => boolean)[] = [];
  /** Notices of the step that is running. */
  private notices: StepNotice[] = [];
  private readonly now: () => number;

  constructor(private readonly options: RunnerOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  async open(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.localUrl ?? this.options.databaseUrl });
    client.on('error', () => {});
    await client.connect();
    await client.query(
      `CREATE SCHEMA IF NOT EXISTS ${BookkeepingSchema};
       CREATE TABLE IF NOT EXISTS ${BookkeepingSchema}.applied (seq serial, id text PRIMARY KEY)`,
    );
    this.client = client;
    collectUnhandledRejections();
  }

  /** One step of one migration, with its bookkeeping; throws what the step throws. */
  private async runStep(m: Migration, direction: 'up' | 'down', context: StepContext): Promise<void> {
    if (direction === 'up') {
      if (this.storage.has(m.id)) throw new Error(`${m.id} is applied already`);
      context.bookkeeping = bookkeepingSql('up', m.id);
      await m.up.run(context);
      await this.storage.logMigration(m.id, context);
      return;
    }
    if (!m.down) throw new Error(`${m.id} has no down step`);
    if (!this.storage.has(m.id)) throw new Error(`${m.id} is not applied`);
    context.bookkeeping = bookkeepingSql('down', m.id);
    await m.down.run(context);
    await this.storage.unlogMigration(m.id, context);
  }

  /** What a step gets: our connection, the database, the step's signal, the run's shared state. */
  private context(): StepContext {
    return {
      client: this.connection,
      databaseUrl: this.options.databaseUrl,
      signal: this.abort.signal,
      shared: this.shared,
      onClose: (release) => this.releases.push(release),
      onBusy: (probe) => this.probes.push(probe),
      settle: () => this.settle(),
      notice: (notice) => this.notices.push(notice),
    };
  }

  /** True while queries a step started are still running on this database's connections. */
  private busy(): boolean {
    return (
      clientBusy(this.client) ||
      this.probes.some((probe) => {
        try {
          return probe();
        } catch {
          return false;
        }
      })
    );
  }

  /**
   * Waits until no query the step started is running any more (the step timeout still applies),
   * and says so when some were: the migration tool would have recorded the step as done and moved
   * on, or exited, with them still running.
   */
  private async settle(): Promise<void> {
    // Let work the step started without awaiting reach its connection pool first.
    await new Promise((resolve) => setImmediate(resolve));
    if (!this.busy()) return;
    // Until the work is done, the step times out (its signal aborts), or the runner closes.
    const { signal } = this.abort;
    while (this.busy() && !signal.aborted && this.client) await new Promise((r) => setTimeout(r, 5));
    this.notices.push({
      severity: 'error',
      message: `returned before its queries finished (a missing await?). The migration tool records the step as done when its function returns, and may exit with the queries cut off, leaving the database half-migrated. The check waited for them before going on. Return or await every promise the step starts (e.g. \`return queryInterface.sequelize.transaction(...)\`).`,
    });
  }

  /** Rejections of promises nothing awaited, as notices of the step now running. */
  private takeStrays(): void {
    for (const reason of strays.splice(0)) {
      // Our own cancel at the step timeout (pg_cancel_backend) is reported as the timeout.
      const cancelled = (reason as { parent?: { code?: string }; code?: string }) ?? {};
      if ((cancelled.parent?.code ?? cancelled.code) === '57014' && /user request/.test(messageOf(reason)))
        continue;
      this.notices.push({
        severity: 'error',
        message: `started work it did not await, and that work failed: ${messageOf(reason)}. The migration tool would not see this failure and would record the step as done. Await every promise the step starts.`,
        ...(driverErrorDetail(reason) ? { detail: driverErrorDetail(reason) } : {}),
      });
    }
  }

  /**
   * A failure that is the environment's, not the migration's: an extension the server lacks, a
   * server that exited or restarted, a session something else ended. Undefined otherwise.
   */
  private async environmentFault(
    migration: Migration,
    direction: 'up' | 'down',
    cause: unknown,
    step = `\`${migration.id}\` (${direction})`,
  ): Promise<CannotCheck | undefined> {
    const text = [messageOf(cause), cause instanceof StepError ? cause.detail : driverErrorDetail(cause)]
      .filter(Boolean)
      .join('\n');
    const server = this.options.serverName ?? 'the PostgreSQL server';
    const extension = missingExtension(text);
    if (extension) {
      const image = /^postgis/i.test(extension) ? ' (e.g. `postgis/postgis:16-3.4`)' : ' that ships it';
      return new CannotCheck(
        `${step} needs the extension "${extension}", which ${server}, where the checks run, does not have. That is not a fault of the migration. Run the check on a server that has it: \`postgres: docker\` with \`postgres-image\`${image}, or a workflow \`services:\` container with the extension and \`database-url\`.`,
        { cause },
      );
    }
    const lost = lostConnection(cause as { code?: unknown; message?: string }, text);
    // The session can drop before the server's exit or restart is visible: give it a moment.
    const deadline = this.now() + (lost ? 3_000 : 0);
    let fault = await this.options.health?.().catch(() => undefined);
    while (!fault && lost && this.options.health && this.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      fault = await this.options.health().catch(() => undefined);
    }
    if (fault) {
      return new CannotCheck(
        `PostgreSQL ${fault.what} during ${step}. That is a fault of the server the checks run on, not of the migration, so the run stopped there.${fault.log ? ` Its log ends with:\n${fault.log}\n` : ' '}If it ran out of memory, give the job more memory or check fewer sets at once; then run the check again.`,
        { cause },
      );
    }
    if (lost) {
      return new CannotCheck(
        `The connection to PostgreSQL was closed during ${step} (${messageOf(cause)}), though the server is still up: something outside the migration ended the session (an administrator, a pooler, an idle timeout). Run the check again.`,
        { cause },
      );
    }
    return undefined;
  }

  /** Takes these as applied: the database is a copy of one where they ran (their bookkeeping too). */
  assumeApplied(ids: readonly string[]): void {
    this.storage.ran(ids.filter((id) => !this.storage.has(id)));
  }

  /** True when the migration's up step ran and its down step has not. */
  isApplied(id: string): boolean {
    return this.storage.has(id);
  }

  /** The connection steps run on (also for catalog reads between steps). */
  get connection(): pg.Client {
    if (!this.client) throw new Error('Runner is not open');
    return this.client;
  }

  /**
   * Runs the migration's up step. `follow`: statements of ours to run right after the step's COMMIT
   * in the same round trip, where the step can carry them (SQL in one transaction); their results
   * come back in `followed`. They must never fail: an error after the COMMIT would look like the
   * step's (when one does, the bookkeeping says whether the step committed).
   */
  up(migration: Migration, follow?: readonly string[]): Promise<StepOutcome> {
    return this.step(migration, 'up', follow);
  }

  /**
   * Applies `migrations` in order, as `up` one by one would, for migrations that are only applied
   * (what a branch shares with its base, a rebuild): consecutive SQL steps that run in a
   * transaction of their own go to the server many to a round trip, each still in its own
   * transaction with its bookkeeping. Stops at the first that fails, and returns it with the
   * outcome `up` gives it (it runs alone again, for its file and line). `applied`: told each
   * migration that applied, with its own time as it is known (in a round trip of many, from the
   * server's clock between the steps; for a group one runner command applies, the group's time
   * shared out) and what a step run alone said besides. `alone`: every step in a session of its own
   * as `up` gives it (a runner's command for many steps shares one between them); SQL steps still
   * go many to a round trip, each its own transaction, as one at a time would.
   */
  async upMany(
    migrations: readonly Migration[],
    applied?: (migration: Migration, step: Pick<StepOutcome, 'ms' | 'notices'>) => void,
    alone = false,
  ): Promise<FailedStep | undefined> {
    const timed = applied && ((m: Migration, ms: number) => applied(m, { ms, notices: [] }));
    let i = 0;
    // After a failure among many, the rest go one by one: a runner that rolled the whole group
    // back would otherwise run it again up to the failure for every step before it.
    let grouping = !alone;
    while (i < migrations.length) {
      const first = migrations[i] as Migration;
      const together = grouping && !this.storage.has(first.id) ? first.up.together : undefined;
      if (together) {
        let end = i + 1;
        while (end < migrations.length && migrations[end]?.up.together?.with === together.with) end++;
        const group = migrations.slice(i, end).filter((m) => !this.storage.has(m.id));
        if (group.length > 1) {
          const started = this.now();
          const done = await this.runTogether(together, group);
          for (const m of group.slice(0, done)) timed?.(m, (this.now() - started) / Math.max(done, 1));
          i += done;
          if (done === group.length) continue;
          grouping = false;
        }
      }
      const batch: { migration: Migration; text: string }[] = [];
      let bytes = 0;
      for (let j = i; j < migrations.length && batch.length < BatchSteps && bytes < BatchBytes; j++) {
        const m = migrations[j] as Migration;
        const text = this.storage.has(m.id) ? undefined : m.up.batched?.();
        if (text === undefined) break;
        batch.push({ migration: m, text });
        bytes += text.length;
      }
      if (batch.length > 1) {
        const done = await this.sendBatch(batch, timed);
        i += done;
        if (done === batch.length) continue;
      }
      // One step alone: it cannot travel with others, or it failed among them (for its own error,
      // and its own step timeout when the batch ran out of time).
      const m = migrations[i] as Migration;
      const outcome = await this.up(m);
      if (!outcome.ok) return { migration: m, outcome };
      applied?.(m, outcome);
      i++;
    }
    return undefined;
  }

  /** Runs a group through its format (`together`), then records the ones that were applied. */
  private async runTogether(
    together: NonNullable<Migration['up']['together']>,
    group: readonly Migration[],
  ): Promise<number> {
    const client = this.connection;
    let done: number;
    try {
      done = await together.run(this.context(), group);
    } catch (error) {
      throw (await this.environmentFault(group[0] as Migration, 'up', causeOf(error))) ?? error;
    }
    const ids = group.slice(0, done).map((m) => m.id);
    if (ids.length) {
      await client.query(`INSERT INTO ${BookkeepingSchema}.applied (id) SELECT unnest($1::text[])`, [ids]);
      this.storage.ran(ids);
    }
    return done;
  }

  /**
   * Sends steps in one query string; returns how many ran (the ones before a failure). The batch
   * as a whole gets one step timeout: when it runs out, the step that was running runs again alone.
   */
  private async sendBatch(
    batch: readonly { migration: Migration; text: string }[],
    timed?: (migration: Migration, ms: number) => void,
  ): Promise<number> {
    const client = this.connection;
    const ids = batch.map((b) => b.migration.id);
    // With `timed`, the server's clock before the first step and at the end of each: each step's own time.
    const sql =
      (timed ? `SELECT ${ClockSql};\n` : '') +
      batch
        .map(
          (b) =>
            `${b.text}${bookkeepingSql('up', b.migration.id)}${timed ? ` RETURNING ${ClockSql}` : ''};COMMIT;`,
        )
        .join('\n');
    const timer = setTimeout(() => void this.options.cancel().catch(() => {}), this.options.timeoutMs);
    try {
      const results = (await client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
      this.storage.ran(ids);
      if (timed) {
        const clocks = (Array.isArray(results) ? results : [results])
          .filter((r) => r.fields?.[0]?.name === StepClock)
          .map((r) => Number(r.rows[0]?.[StepClock]));
        for (const [k, b] of batch.entries())
          timed(b.migration, Math.max(0, (clocks[k + 1] ?? 0) - (clocks[k] ?? 0)));
      }
      return batch.length;
    } catch (error) {
      // The steps before the failing one committed; the failing one's transaction is aborted.
      let recorded: { id: string }[];
      try {
        await client.query('ROLLBACK');
        recorded = (
          await client.query<{ id: string }>(
            `SELECT id FROM ${BookkeepingSchema}.applied WHERE id = ANY($1)`,
            [ids],
          )
        ).rows;
      } catch (lost) {
        // The session or the server is gone: that is the environment's doing, whichever step ran.
        throw (await this.environmentFault(batch[0]?.migration as Migration, 'up', error)) ?? lost;
      }
      const done = new Set(recorded.map((r) => r.id));
      const ran = ids.filter((id) => done.has(id));
      this.storage.ran(ran);
      return ran.length;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The step's text for a round trip of many (see `stepsFollowed`): SQL that runs in a transaction
   * of ours, in a state where it can run (an up step not applied, a down step applied).
   */
  batchText(migration: Migration, direction: 'up' | 'down'): string | undefined {
    if (direction === 'up') return this.storage.has(migration.id) ? undefined : migration.up.batched?.();
    return this.storage.has(migration.id) ? migration.down?.batched?.() : undefined;
  }

  /**
   * The steps of `migrations` in one direction, many to a round trip, each as `up` or `down` runs it
   * alone (its own transaction, its bookkeeping), each followed after its COMMIT by its statement of
   * `follow` where it has one: for a walk that reads the catalog after its steps. A step without
   * one gets `returning` (expressions) in its own transaction, after its text, instead. Each comes
   * back with its own time (the server's clock between the steps, the statement that followed the
   * step before included), its transaction's id (`txid_current()`, as our event triggers log it)
   * and what followed it. Every step must have its text for it (`batchText`). Undefined when
   * anything in the round trip failed or the round trip outlasted one step timeout: nothing then
   * says which step did what, and the caller leaves this database for one that runs the steps one
   * by one.
   */
  async stepsFollowed(
    direction: 'up' | 'down',
    migrations: readonly Migration[],
    follow: readonly (string | undefined)[],
    returning = '',
  ): Promise<{ ms: number; xid: string; followed?: pg.QueryResult }[] | undefined> {
    const client = this.connection;
    const texts = migrations.map((m) => this.batchText(m, direction));
    if (texts.some((t) => t === undefined)) throw new Error('a step cannot travel with others');
    const sql =
      `SELECT ${ClockSql};\n` +
      migrations
        .map((m, k) => {
          const then = follow[k];
          const more = then === undefined && returning ? `, ${returning}` : '';
          return `${texts[k]}${bookkeepingSql(direction, m.id)} RETURNING ${ClockSql}, txid_current()::text AS ${StepXid}${more};COMMIT${then === undefined ? '' : `;${then}`}`;
        })
        .join(';\n');
    const timer = setTimeout(() => void this.options.cancel().catch(() => {}), this.options.timeoutMs);
    try {
      const results = (await client.query(sql)) as unknown as pg.QueryResult[];
      const ids = migrations.map((m) => m.id);
      if (direction === 'up') this.storage.ran(ids);
      else this.storage.unran(ids);
      // Our clock's rows name its column; what followed a step is the first result after its COMMIT.
      const clocks: number[] = [];
      const steps: { ms: number; xid: string; followed?: pg.QueryResult }[] = [];
      for (const [i, r] of results.entries()) {
        if (r.fields?.[0]?.name !== StepClock) continue;
        clocks.push(Number(r.rows[0]?.[StepClock]));
        const k = clocks.length - 2;
        if (k < 0) continue;
        const ms = Math.max(0, (clocks[k + 1] ?? 0) - (clocks[k] ?? 0));
        const xid = String(r.rows[0]?.[StepXid]);
        steps.push(
          follow[k] === undefined ? { ms, xid } : { ms, xid, followed: results[i + 2] as pg.QueryResult },
        );
      }
      if (steps.length !== migrations.length) return undefined;
      return steps;
    } catch (error) {
      // A server that died or a session something else ended is the environment's doing, said as
      // such; a migration's own error (an extension the server lacks among them) is told by the
      // steps run one by one.
      if (!missingExtension(messageOf(error))) {
        // The server sends a round trip's results when it ends: which of its steps ran is not known.
        const first = migrations[0] as Migration;
        const last = migrations.at(-1) as Migration;
        const steps =
          first === last
            ? undefined
            : `the ${direction} steps of \`${first.id}\` to \`${last.id}\` (sent to the server together)`;
        const fault = await this.environmentFault(first, direction, error, steps);
        if (fault) throw fault;
      }
      await client.query('ROLLBACK').catch(() => {});
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private timedOutOutcome(file: string, line: number | undefined, ms: number): StepOutcome {
    return {
      ok: false,
      ms,
      timedOut: true,
      error: new StepError(
        `did not finish within the step timeout of ${formatDuration(this.options.timeoutMs)} and was cancelled`,
        file,
        line,
      ),
      notices: [],
    };
  }

  /** Runs the migration's down step; `follow` as for `up`. */
  down(migration: Migration, follow?: readonly string[]): Promise<StepOutcome> {
    return this.step(migration, 'down', follow);
  }

  /** Whether the step's transaction committed, from its bookkeeping (an up step records its id, a down step removes it). */
  private async committed(id: string, direction: 'up' | 'down'): Promise<boolean> {
    const { rows } = await this.connection.query(`SELECT 1 FROM ${BookkeepingSchema}.applied WHERE id = $1`, [
      id,
    ]);
    return direction === 'up' ? rows.length > 0 : rows.length === 0;
  }

  private async step(
    migration: Migration,
    direction: 'up' | 'down',
    follow?: readonly string[],
  ): Promise<StepOutcome> {
    if (!this.client) throw new Error('Runner is not open');
    const step = direction === 'up' ? migration.up : migration.down;
    const file = step?.file ?? migration.up.file;
    const started = this.now();
    this.notices = [];
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const context = this.context();
    if (follow?.length) {
      context.follow = follow;
      context.committed = () => this.committed(migration.id, direction);
    }
    const work = this.runStep(migration, direction, context);
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        this.abort.abort();
        void this.options.cancel().catch(() => {});
        // Give the cancelled statement a moment to unwind; a step stuck outside SQL is abandoned.
        setTimeout(() => reject(new Error('timed out')), 5_000).unref();
      }, this.options.timeoutMs);
    });
    const notices = () => {
      this.takeStrays();
      return this.notices;
    };
    try {
      await Promise.race([work, deadline]);
      // Work that ended only because the timeout cancelled it (or stopped waiting) did time out.
      if (timedOut) throw new Error('timed out');
      return {
        ok: true,
        ms: this.now() - started,
        notices: notices(),
        ...(context.followed ? { followed: context.followed } : {}),
      };
    } catch (error) {
      const ms = this.now() - started;
      const fault = await this.environmentFault(migration, direction, error);
      if (fault) throw fault;
      if (timedOut) {
        this.abort = new AbortController();
        return { ...this.timedOutOutcome(file, step?.line, ms), notices: notices() };
      }
      // What the step threw: a StepError located in its file, or anything else a module throws.
      const cause = error;
      if (cause instanceof StepError) return { ok: false, ms, error: cause, notices: notices() };
      return {
        ok: false,
        ms,
        error: new StepError(messageOf(cause), file, undefined, undefined, { cause }),
        notices: notices(),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const release of this.releases.splice(0)) await release().catch(() => {});
    if (client) await client.end().catch(() => {});
  }
}
