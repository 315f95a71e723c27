import { createHash } from 'node:crypto';
import pg from 'pg';
import { BookkeepingSchema } from '../core/bookkeeping.js';
import { permissionDenied } from '../core/faults.js';
import type { PropValue, SchemaObject, SchemaSnapshot } from '../core/schema.js';
import {
  DependentsSql,
  familySql,
  type RootClass,
  RootClasses,
  rootOfFunctionSql,
  type TakeRow,
  takeFunctionSql,
} from './snapshot-sql.js';

/** What the snapshot leaves out besides the system schemas. */
export interface Exclusions {
  /** Schemas (our bookkeeping). */
  schemas: string[];
  /** `schema.table` names: the migration framework's history table. */
  tables: string[];
}

export const defaultExclusions = (tables: string[] = []): Exclusions => ({
  schemas: [BookkeepingSchema],
  tables,
});

interface Row {
  obj_class: string | null;
  obj_oid: number | null;
  root_class: string;
  root_oid: number;
  key: string | null;
  kind: string;
  name: string | null;
  parent: string | null;
  props: Record<string, PropValue> | null;
}

/** A row of the take function (`takeFunctionSql`). */
export interface TakenRow {
  r_t: TakeRow;
  r_obj_class: string | null;
  r_obj_oid: number | null;
  r_root_class: string | null;
  r_root_oid: number | null;
  r_key: string | null;
  r_kind: string | null;
  r_name: string | null;
  r_parent: string | null;
  r_props: unknown;
}

/**
 * The statement of a full read (`lockFree`: see `familySql`) and a short id of its text: the
 * exclusions written into its text,
 * so that it has no parameters and a plan made once serves every read (parsing and planning it
 * costs ~10 ms of a 500-table read).
 * The tracker's read carries each root's print; a plain snapshot does not. (Reads of some roots go
 * through the take function, planned once for index lookups.)
 */
const fullSql = memo(
  (prints: 'none' | 'with', exclusions: Exclusions, lockFree: boolean) => {
    const text = familySql('all', {
      prints,
      lockFree,
      args: ['ARRAY[]::oid[]', textArray(exclusions.schemas), textArray(exclusions.tables)],
    });
    return { text, id: createHash('sha1').update(text).digest('hex').slice(0, 12) };
  },
  (prints, exclusions, lockFree) => JSON.stringify([prints, exclusions.schemas, exclusions.tables, lockFree]),
);

/**
 * How big the catalogs are, in steps of about 1.4x: a plan kept from an early read, made for the
 * empty catalogs of a new database, scans them row by row once they have grown (bench: 550 ms for
 * 500 tables, against 150 ms planned afresh), so a kept plan serves only catalogs of the size it
 * was made for. The planner sizes a catalog by its pages on disk, which this reads (no statistics).
 */
const CatalogSizeSql = `SELECT round(2 * log(2, 1 + (pg_relation_size('pg_class') + pg_relation_size('pg_attribute')
  + pg_relation_size('pg_depend') + pg_relation_size('pg_type') + pg_relation_size('pg_constraint')) / 8192.0))::int AS size`;

/**
 * A full read. `prepared` (our own sessions): as a named statement, parsed and planned once per
 * session and catalog size; not through a pooler that may hand each statement another session
 * (a target database's URL).
 */
async function readAll(
  client: pg.Client,
  exclusions: Exclusions,
  { prints = 'none', prepared = true }: { prints?: 'none' | 'with'; prepared?: boolean } = {},
): Promise<pg.QueryResult<Row>> {
  const { text, id } = fullSql(prints, exclusions, false);
  if (!prepared) return client.query<Row>(text);
  const size = (await client.query<{ size: number }>(CatalogSizeSql)).rows[0]?.size ?? 0;
  return client.query<Row>({ name: `pgmv_full_${id}_${size}`, text });
}

/** `fn` remembering its results by `key` of its arguments. */
function memo<A extends unknown[], R>(fn: (...args: A) => R, key: (...args: A) => string): (...args: A) => R {
  const kept = new Map<string, R>();
  return (...args: A) => {
    const k = key(...args);
    let value = kept.get(k);
    if (value === undefined) {
      value = fn(...args);
      kept.set(k, value);
    }
    return value;
  };
}

/**
 * Absent and null mean the same; keeping only set values makes snapshots smaller and stable. The
 * statement strips the null props already (jsonb_strip_nulls), so they are used as they come.
 */
function objectOf(row: Row): SchemaObject {
  const props = row.props ?? {};
  return row.parent
    ? { kind: row.kind, name: row.name ?? '', parent: row.parent, props }
    : { kind: row.kind, name: row.name ?? '', props };
}

/** Reads the whole schema (`prepared`: see `readAll`). */
export async function readSnapshot(
  client: pg.Client,
  exclusions: Exclusions,
  { prepared = true }: { prepared?: boolean } = {},
): Promise<SchemaSnapshot> {
  const { rows } = await readAll(client, exclusions, { prepared });
  const snapshot: SchemaSnapshot = {};
  for (const row of rows) if (row.key) snapshot[row.key] = objectOf(row);
  return snapshot;
}

/** The whole schema of the database at `url`, read on a session of its own. */
export async function snapshotAt(url: string, exclusions: Exclusions): Promise<SchemaSnapshot> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await readSnapshot(client, exclusions);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Keys of objects whose names appear inside other objects' definitions. */
const Renameable =
  /^(table|view|materialized view|sequence|foreign table|column|enum|domain|composite type|range type|function|procedure|aggregate|window function|schema):/;

/** A root's key, `pg_class:16384`, as its catalog and oid. */
function splitRoot(root: string): [string, number] {
  const at = root.indexOf(':');
  return [root.slice(0, at), Number(root.slice(at + 1))];
}

function addRoot(roots: Map<RootClass, Set<number>>, cls: string, oid: number): void {
  if (!(RootClasses as readonly string[]).includes(cls)) return;
  const set = roots.get(cls as RootClass) ?? new Set<number>();
  set.add(Number(oid));
  roots.set(cls as RootClass, set);
}

/** An SQL literal of a text array (standard_conforming_strings is on since Postgres 9.1). */
function textArray(values: readonly string[]): string {
  return `ARRAY[${values.map((v) => `'${v.replaceAll("'", "''")}'`).join(',')}]::text[]`;
}

/**
 * What the take does besides, for the locks check (`lockTraceRider`): take the trace (`locks`), and
 * switch tracing on or off for the steps after it (`switch`). Its rows come back as `Taken.rider`.
 */
export interface Rider {
  locks: boolean;
  switch?: boolean;
}

/** An object as the tracker holds it: its value, and the root whose family it belongs to. */
export interface Entry {
  object: SchemaObject;
  root: string;
}

/** Values of some keys (and of some roots' prints) as they were when a mark was taken. */
export class Mark {
  readonly journal = new Map<string, Entry | undefined>();
  readonly prints = new Map<string, string | undefined>();
}

/** What a take gave back: its rows, and the rider's values among them. */
export interface Taken {
  take: TakenRow[];
  rider: unknown[];
}

/** What the state of some roots must be after a step: their prints (undefined: absent). */
export type Expected = Map<string, string | undefined>;

/** After a step checked by prints: whether every root it and `expected` name holds what it must. */
export interface PrintCheck {
  same: boolean;
  /** The roots compared (and, when not the same, read in full since). */
  roots: string[];
}

const InstallSql = `
-- What it holds lives from a step to the read after it: no WAL for it. Each row names the
-- transaction that logged it: steps read together are told apart by it.
CREATE UNLOGGED TABLE IF NOT EXISTS ${BookkeepingSchema}.ddl_log (classid text, objid oid, dropped boolean, xid bigint DEFAULT txid_current());
-- Analyzed while empty, the planner knows the log is small and looks catalogs up by index.
ANALYZE ${BookkeepingSchema}.ddl_log;
CREATE OR REPLACE FUNCTION ${BookkeepingSchema}.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ${BookkeepingSchema}.ddl_log SELECT classid::regclass::text, objid, false FROM pg_event_trigger_ddl_commands();
END $$;
CREATE OR REPLACE FUNCTION ${BookkeepingSchema}.log_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  -- A dropped part of an object that stays (a column: objsubid) is a change of that object.
  INSERT INTO ${BookkeepingSchema}.ddl_log SELECT classid::regclass::text, objid, objsubid = 0 FROM pg_event_trigger_dropped_objects();
END $$;
${rootOfFunctionSql()}
${takeFunctionSql()}
`;

/** The event triggers that keep the log: from their creation on, every DDL statement logs what it touched. */
const TriggersSql = `
DROP EVENT TRIGGER IF EXISTS ${BookkeepingSchema}_ddl;
DROP EVENT TRIGGER IF EXISTS ${BookkeepingSchema}_drop;
CREATE EVENT TRIGGER ${BookkeepingSchema}_ddl ON ddl_command_end EXECUTE FUNCTION ${BookkeepingSchema}.log_ddl();
CREATE EVENT TRIGGER ${BookkeepingSchema}_drop ON sql_drop EXECUTE FUNCTION ${BookkeepingSchema}.log_drop();
`;

/**
 * A read of everything that readies a session's caches for the full read after it, while
 * migrations still run in another session: it locks nothing they could wait for (`lockFree`),
 * and gives up rather than wait for a lock itself. What it reads is thrown away.
 */
const warmUpSql = (prints: 'none' | 'with', exclusions: Exclusions) =>
  `SET LOCAL lock_timeout = '10ms';\n${fullSql(prints, exclusions, true).text}`;

/** The statement of a take (see `CatalogTracker.takeSql`). */
function takeStatement(
  mode: 'details' | 'prints' | 'read',
  extra: readonly string[],
  exclusions: Exclusions,
  rider?: Rider,
): string {
  const split = extra.map(splitRoot);
  const locks = `${rider?.locks ?? false}, ${rider?.switch ?? 'NULL'}`;
  return `SELECT * FROM ${BookkeepingSchema}.take('${mode}', ${textArray(split.map(([c]) => c))}, ARRAY[${split.map(([, o]) => o).join(',')}]::oid[], ${textArray(exclusions.schemas)}, ${textArray(exclusions.tables)}, ${ManyRoots}, ${locks})`;
}

/** More touched roots than this: a full read is cheaper than the scoped reads (bench: 1000 migrations). */
const ManyRoots = 400;

/**
 * The schema of one database, kept in memory and brought up to date after each step by re-reading
 * only what the step touched. Event triggers (`ddl_command_end`, `sql_drop`) record the touched
 * objects, from any session; where they cannot be created (no superuser), every refresh is a full
 * read: slower, same result. Each root's print (a hash of its catalog rows) is kept beside its
 * family, so that a step that must give back a known state can be checked without reading the
 * families again (`checkPrints`).
 */
export class CatalogTracker {
  private readonly objects = new Map<string, Entry>();
  private readonly byRoot = new Map<string, Set<string>>();
  private readonly rootOf = new Map<string, string>();
  private readonly prints = new Map<string, string>();
  private readonly marks = new Set<Mark>();

  private constructor(
    readonly mode: 'incremental' | 'full',
    private readonly exclusions: Exclusions,
    private readonly printAll: boolean,
  ) {}

  /**
   * Installs the log, its functions and the take (`open` adds the event triggers that fill the
   * log): 'full' where that is not allowed. Nothing it makes logs anything yet, so it can run while
   * the migrations before a walk still apply in another session.
   */
  static async install(client: pg.Client): Promise<'incremental' | 'full'> {
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${BookkeepingSchema}`);
      await client.query(InstallSql);
      return 'incremental';
    } catch (error) {
      if (!permissionDenied(error)) throw error;
      return 'full';
    }
  }

  /**
   * Plans the take's statements in this session ahead of the first step (a take is planned once
   * per session: ~40 ms on a grown schema), reading nothing: both of its reads, for a root of each
   * class that is not there. Its log (empty while no event trigger exists) is taken too.
   */
  static async planTakes(client: pg.Client, exclusions: Exclusions): Promise<void> {
    const none = RootClasses.map((c) => `${c}:0`);
    await client.query(takeStatement('read', none, exclusions));
    await client.query(takeStatement('prints', none, exclusions));
  }

  /** A read of everything, thrown away, that readies `client`'s caches for a full read (`warmUpSql`). */
  static async warmUp(client: pg.Client, exclusions: Exclusions, printAll: boolean): Promise<void> {
    await client.query(warmUpSql(printAll ? 'with' : 'none', exclusions));
  }

  /**
   * Installs the event triggers (when allowed) and reads the whole schema once. `printAll`: full
   * reads print every root too (a tenth of a millisecond a root), which pays when many migrations
   * will be checked; without, a root first touched by a checked migration has no print from before
   * it, and its down step is then checked by reading the families. `installed`: what `install`
   * found, when it ran already (while the migrations before a walk applied); else it runs now.
   */
  static async open(
    client: pg.Client,
    exclusions: Exclusions,
    printAll = true,
    installed?: 'incremental' | 'full',
  ): Promise<CatalogTracker> {
    let mode = installed ?? (await CatalogTracker.install(client));
    if (mode === 'incremental') {
      try {
        await client.query(TriggersSql);
      } catch (error) {
        if (!permissionDenied(error)) throw error;
        mode = 'full';
      }
    }
    const tracker = new CatalogTracker(mode, exclusions, printAll);
    await tracker.reload(client);
    if (mode === 'incremental') await client.query(`DELETE FROM ${BookkeepingSchema}.ddl_log`);
    return tracker;
  }

  /**
   * The statement that takes the log and reads what it names (`details`), or only their prints
   * (`prints`), with the roots in `extra` besides: for a step to run right after its COMMIT, or for
   * `refresh` to run on its own; `read`: the families of `extra` only, the log left alone.
   */
  takeSql(mode: 'details' | 'prints' | 'read', extra: readonly string[] = [], rider?: Rider): string {
    return takeStatement(mode, extra, this.exclusions, rider);
  }

  /** Runs a take (`takeSql`) on `client`, on its own round trip. */
  async take(client: pg.Client, sql: string): Promise<Taken> {
    return taken((await client.query<TakenRow>(sql)).rows);
  }

  /**
   * Brings the in-memory schema up to date with the database; returns the rider's values, read in
   * the same round trip as the log. `ridden`: what the take (in `details` mode, no extra roots, with
   * `rider`) gave when it rode on a step; without it, or when it failed, the take runs now on `client`.
   * `prints` false: a full read, if one is needed, leaves the prints out (nothing will compare them).
   */
  async refresh(client: pg.Client, rider?: Rider, ridden?: Taken, prints = true): Promise<unknown[]> {
    // Without event triggers there is no log, and no lock tracing to ride.
    if (this.mode === 'full') {
      await this.reload(client);
      return [];
    }
    let got = ridden ?? (await this.take(client, this.takeSql('details', [], rider)));
    // The take that rode on a step caught an error and undid itself: the log is there to take again.
    if (failed(got.take)) got = await this.take(client, this.takeSql('details', [], rider));
    const error = failed(got.take);
    if (error) throw new Error(`Reading the catalog after a step failed: ${error}`);
    await this.absorb(client, got.take, prints);
    return got.rider;
  }

  /** The milliseconds the take function itself ran, from its rows (0 when it did not run). */
  static elapsed(taken: Taken | undefined): number {
    const row = taken?.take.find((r) => r.r_t === 'elapsed');
    return typeof row?.r_props === 'number' ? row.r_props : 0;
  }

  /**
   * After a step that must leave some roots as `expected` and every other root it touches as it
   * was: compares the prints the take (in `prints` mode, with the expected roots as extra and
   * `rider`) gave when it rode on the step (`ridden`), or gives now on `client`; returns the
   * rider's values with the verdict.
   * When they all hold, nothing is read and nothing changes here (the caller knows the state); when
   * not, the families of every root compared are read, and the tracker holds what is there now.
   */
  async checkPrints(
    client: pg.Client,
    expected: Expected,
    rider?: Rider,
    ridden?: Taken,
  ): Promise<PrintCheck & { rider: unknown[] }> {
    let got = ridden;
    // As for `refresh`: a take that caught an error undid itself (log, trace, switch), so it runs again.
    if (!got || failed(got.take))
      got = await this.take(client, this.takeSql('prints', [...expected.keys()], rider));
    const { take } = got;
    const error = failed(take);
    if (error) throw new Error(`Reading the catalog after a step failed: ${error}`);
    const { same, roots, many } = this.printsHold(expected, take);
    if (same) return { same, roots, rider: got.rider };
    if (many) await this.reload(client);
    else {
      const all = new Map<RootClass, Set<number>>();
      for (const root of roots) addRoot(all, ...splitRoot(root));
      await this.readWithDependents(client, all);
    }
    return { same: false, roots, rider: got.rider };
  }

  /**
   * Whether every root the take (in `prints` mode, with the roots of `expected` as extra) names holds
   * what it must: the expected print, or the one it had before the step; absent where it was.
   */
  private printsHold(
    expected: Expected,
    take: TakenRow[],
  ): { same: boolean; roots: string[]; many: boolean } {
    const { read, gone, unknown } = this.touchedBy(take, [...expected.keys()]);
    const now = new Map<string, string>();
    for (const row of take)
      if (row.r_t === 'object' && row.r_kind === 'print')
        now.set(`${row.r_root_class}:${row.r_root_oid}`, row.r_props as string);
    const roots = [...new Set([...read, ...gone, ...unknown])];
    // Roots of dropped parts were not printed: whether they hold is known only by reading them.
    const want = (root: string) => (expected.has(root) ? expected.get(root) : this.prints.get(root));
    const many = take.some((r) => r.r_t === 'many');
    const same = !many && unknown.length === 0 && roots.every((root) => now.get(root) === want(root));
    return { same, roots, many };
  }

  /**
   * `checkPrints` with what a take gave that rode on a step, where nothing may be read any more (the
   * steps after it ran already): as `checkPrints` gives it when every root holds what it must,
   * undefined when not, or when the take failed.
   */
  printsHoldAfter(expected: Expected, ridden: Taken): (PrintCheck & { rider: unknown[] }) | undefined {
    if (failed(ridden.take)) return undefined;
    const { same, roots } = this.printsHold(expected, ridden.take);
    return same ? { same, roots, rider: ridden.rider } : undefined;
  }

  /**
   * `refresh` with what a take (`details`, no extra roots) gave that rode on a step, where nothing may
   * be read any more (the steps after it ran already): the rider's values, or undefined when the take
   * failed or what it gave is not enough alone (many roots, dropped parts of roots it did not read, a
   * rename whose dependents read differently). Then the tracker no longer knows the database.
   */
  absorbAfter(ridden: Taken): unknown[] | undefined {
    const { take } = ridden;
    if (failed(take) || take.some((r) => r.r_t === 'many')) return undefined;
    const { read, gone, unknown } = this.touchedBy(take, []);
    if (unknown.length) return undefined;
    return this.apply(new Set([...read, ...gone]), objectRows(take)).length ? undefined : ridden.rider;
  }

  /**
   * One take that read the steps of one round trip together (`xids`: each step's transaction, in
   * order; `expected`: each step's expected roots, for a take in `prints` mode), told apart into
   * one take per step, as each step's own take would have given it: its roots (the rows logged in
   * its transaction), the families or prints of those roots and of its expected ones, and the
   * locks its transaction logged. That is exact only when no root is any two steps' (nothing a
   * step read was changed by a later one before the read): undefined when one is, or when the take
   * failed or read everything. Each root a step dropped a part of counts as its too.
   */
  splitTake(
    whole: Taken,
    xids: readonly string[],
    expected?: readonly (Expected | undefined)[],
  ): Taken[] | undefined {
    const { take } = whole;
    if (failed(take) || take.some((r) => r.r_t === 'many')) return undefined;
    const step = new Map(xids.map((xid, k) => [xid, k]));
    const owner = new Map<string, number>();
    const claim = (root: string, k: number) => {
      const was = owner.get(root);
      if (was !== undefined && was !== k) return false;
      owner.set(root, k);
      return true;
    };
    const parts: TakenRow[][] = xids.map(() => []);
    for (const [k, expect] of (expected ?? []).entries())
      for (const root of expect?.keys() ?? []) if (!claim(root, k)) return undefined;
    for (const row of take) {
      if (row.r_t !== 'root') continue;
      // Logged before the first step (what set the database up): its take would have had it.
      const k = step.get(String(row.r_props)) ?? 0;
      const key = `${row.r_root_class}:${row.r_root_oid}`;
      if (!claim(key, k)) return undefined;
      const root = row.r_kind === 'dropped' ? this.rootOf.get(key) : undefined;
      if (root && !claim(root, k)) return undefined;
      (parts[k] as TakenRow[]).push(row);
    }
    for (const row of take) {
      if (row.r_t === 'root' || row.r_t === 'rider') continue;
      if (row.r_t !== 'object') {
        for (const part of parts) part.push(row);
        continue;
      }
      const k = owner.get(`${row.r_root_class}:${row.r_root_oid}`);
      if (k !== undefined) (parts[k] as TakenRow[]).push(row);
    }
    // Each logged lock names its transaction last; the switch's value is every step's.
    return parts.map((rows, k) => ({
      take: rows,
      rider: whole.rider.filter((v) => !Array.isArray(v) || (step.get(String(v.at(-1))) ?? 0) === k),
    }));
  }

  /**
   * What the take's `root` rows name: the roots it read (`read`: touched, or extra), the roots
   * dropped themselves (`gone`), and roots of dropped parts whose families it did not read
   * (`unknown`: known only from our earlier reads, e.g. the table of a dropped index).
   */
  private touchedBy(
    take: TakenRow[],
    extra: readonly string[],
  ): { read: string[]; gone: string[]; unknown: string[] } {
    const read = new Set(extra);
    const gone = new Set<string>();
    const dropped: string[] = [];
    for (const row of take) {
      if (row.r_t !== 'root') continue;
      const key = `${row.r_root_class}:${row.r_root_oid}`;
      if (row.r_kind === 'dropped') dropped.push(key);
      else if ((RootClasses as readonly string[]).includes(row.r_root_class ?? '')) read.add(key);
    }
    for (const key of dropped) if (this.rootOf.get(key) === key) gone.add(key);
    const unknown = new Set<string>();
    for (const key of dropped) {
      const root = this.rootOf.get(key);
      if (root && !gone.has(root) && !read.has(root)) unknown.add(root);
    }
    for (const root of read) gone.delete(root);
    return { read: [...read], gone: [...gone], unknown: [...unknown] };
  }

  /** Applies what a take in `details` mode read, and reads what it could not (see `touchedBy`). */
  private async absorb(client: pg.Client, take: TakenRow[], prints = true): Promise<void> {
    // After many steps at once (a replay of what a base branch or a target has, up again), one full
    // read is cheaper than reading each touched family.
    if (take.some((r) => r.r_t === 'many')) {
      await this.reload(client, prints);
      return;
    }
    const { read, gone, unknown } = this.touchedBy(take, []);
    const renamed = this.apply(new Set([...read, ...gone]), objectRows(take));
    const more = new Map<RootClass, Set<number>>();
    for (const root of unknown) addRoot(more, ...splitRoot(root));
    if (more.size) renamed.push(...(await this.readRoots(client, more)));
    await this.readDependents(client, renamed);
  }

  /** Reads the families of `roots` (absent ones are dropped), then whatever reads differently after a rename. */
  private async readWithDependents(client: pg.Client, roots: Map<RootClass, Set<number>>): Promise<void> {
    await this.readDependents(client, await this.readRoots(client, roots));
  }

  /**
   * A renamed table, column, type, sequence, function or schema changes how other objects read
   * (foreign keys, views, defaults, triggers that name it): reads those too.
   */
  private async readDependents(client: pg.Client, renamed: string[]): Promise<void> {
    if (!renamed.length) return;
    const { rows: dependents } = await client.query<{ root_class: string; root_oid: number }>({
      name: 'pgmv-dependents',
      text: DependentsSql,
      values: [renamed.map((r) => splitRoot(r)[0]), renamed.map((r) => splitRoot(r)[1])],
    });
    const more = new Map<RootClass, Set<number>>();
    for (const d of dependents) addRoot(more, d.root_class, d.root_oid);
    await this.readRoots(client, more);
  }

  /**
   * Reads the families of `roots` and replaces them (a root no longer there loses its family);
   * returns the roots that lost a name others may use.
   */
  private async readRoots(client: pg.Client, roots: Map<RootClass, Set<number>>): Promise<string[]> {
    const considered = new Set<string>();
    for (const [cls, oids] of roots) for (const oid of oids) considered.add(`${cls}:${oid}`);
    if (!considered.size) return [];
    const { take } = await this.take(client, this.takeSql('read', [...considered]));
    const error = failed(take);
    if (error) throw new Error(`Reading the catalog failed: ${error}`);
    if (take.some((r) => r.r_t === 'many')) {
      await this.reload(client);
      return [];
    }
    return this.apply(considered, objectRows(take));
  }

  /** Replaces the families of `considered` with `rows`; returns the roots that lost a name others may use. */
  private apply(considered: Set<string>, rows: Row[]): string[] {
    const fresh = new Map<string, Set<string>>();
    for (const row of rows) {
      if (!row.key) continue;
      const root = `${row.root_class}:${row.root_oid}`;
      const keys = fresh.get(root) ?? new Set<string>();
      keys.add(row.key);
      fresh.set(root, keys);
    }
    const renamed = [...considered].filter((root) => {
      const now = fresh.get(root);
      if (!now) return false;
      return [...(this.byRoot.get(root) ?? [])].some((key) => !now.has(key) && Renameable.test(key));
    });
    this.replace(considered, rows);
    return renamed;
  }

  /** Reads everything again; `prints` false: without the prints (the tracker then has none). */
  private async reload(client: pg.Client, prints = true): Promise<void> {
    const { rows } = await readAll(client, this.exclusions, {
      prints: this.printAll && prints ? 'with' : 'none',
    });
    const considered = new Set([
      ...this.byRoot.keys(),
      ...this.prints.keys(),
      ...rows.map((r) => `${r.root_class}:${r.root_oid}`),
    ]);
    this.replace(considered, rows);
  }

  /** Replaces the families of `roots` with `rows`, journaling what changes for open marks. */
  private replace(roots: Set<string>, rows: Row[]): void {
    const fresh = new Map<string, Entry>();
    const prints = new Map<string, string>();
    for (const row of rows) {
      const root = `${row.root_class}:${row.root_oid}`;
      if (row.kind === 'print') {
        prints.set(root, row.props as unknown as string);
        continue;
      }
      if (!row.key) continue;
      fresh.set(row.key, { object: objectOf(row), root });
      if (row.obj_class) this.rootOf.set(`${row.obj_class}:${row.obj_oid}`, root);
    }
    for (const root of roots) {
      for (const key of this.byRoot.get(root) ?? []) {
        if (!fresh.has(key) && this.objects.get(key)?.root === root) this.set(key, undefined);
      }
      this.byRoot.delete(root);
      this.setPrint(root, prints.get(root));
    }
    for (const [key, entry] of fresh) this.set(key, entry);
  }

  private set(key: string, entry: Entry | undefined): void {
    const old = this.objects.get(key);
    for (const mark of this.marks) if (!mark.journal.has(key)) mark.journal.set(key, old);
    if (old && old.root !== entry?.root) this.byRoot.get(old.root)?.delete(key);
    if (!entry) {
      this.objects.delete(key);
      return;
    }
    this.objects.set(key, entry);
    const keys = this.byRoot.get(entry.root) ?? new Set<string>();
    keys.add(key);
    this.byRoot.set(entry.root, keys);
  }

  private setPrint(root: string, print: string | undefined): void {
    for (const mark of this.marks) if (!mark.prints.has(root)) mark.prints.set(root, this.prints.get(root));
    if (print === undefined) this.prints.delete(root);
    else this.prints.set(root, print);
  }

  /**
   * Puts back `entries` (keys and their values, undefined: absent) and `prints`: the state the
   * database is known to be in again (a step gave back what a mark held), without reading it.
   */
  restore(entries: ReadonlyMap<string, Entry | undefined>, prints: Expected): void {
    for (const [key, entry] of entries) this.set(key, entry);
    for (const [root, print] of prints) this.setPrint(root, print);
  }

  /** Starts remembering values as they are now; release it when done. */
  mark(): Mark {
    const mark = new Mark();
    this.marks.add(mark);
    return mark;
  }

  release(mark: Mark): void {
    this.marks.delete(mark);
  }

  /** Keys that may have changed since the mark. */
  changedSince(mark: Mark): string[] {
    return [...mark.journal.keys()];
  }

  /** The given keys as they were at the mark. */
  at(mark: Mark, keys: Iterable<string>): SchemaSnapshot {
    const out: SchemaSnapshot = {};
    for (const [key, entry] of this.entriesAt(mark, keys)) if (entry) out[key] = entry.object;
    return out;
  }

  /** The given keys as they were at the mark, with their roots (undefined: absent then). */
  entriesAt(mark: Mark, keys: Iterable<string>): Map<string, Entry | undefined> {
    const out = new Map<string, Entry | undefined>();
    for (const key of keys)
      out.set(key, mark.journal.has(key) ? mark.journal.get(key) : this.objects.get(key));
    return out;
  }

  /** The prints of the roots read since the mark, as they were at the mark (undefined: absent then). */
  printsAt(mark: Mark): Expected {
    return new Map(mark.prints);
  }

  /** The given keys (or all) as they are now. */
  now(keys?: Iterable<string>): SchemaSnapshot {
    const out: SchemaSnapshot = {};
    for (const key of keys ?? this.objects.keys()) {
      const value = this.objects.get(key)?.object;
      if (value) out[key] = value;
    }
    return out;
  }
}

/** A take's rows, with the rider's values picked out. */
export function taken(rows: TakenRow[]): Taken {
  return { take: rows, rider: rows.filter((r) => r.r_t === 'rider').map((r) => r.r_props) };
}

/** The take's `object` rows, as a family read gives them. */
function objectRows(take: TakenRow[]): Row[] {
  const rows: Row[] = [];
  for (const r of take)
    if (r.r_t === 'object')
      rows.push({
        obj_class: r.r_obj_class,
        obj_oid: r.r_obj_oid,
        root_class: r.r_root_class ?? '',
        root_oid: r.r_root_oid ?? 0,
        key: r.r_key,
        kind: r.r_kind ?? '',
        name: r.r_name,
        parent: r.r_parent,
        props: r.r_props as Row['props'],
      });
  return rows;
}

/** The error the take function caught, if it did. */
function failed(take: TakenRow[]): string | undefined {
  const row = take.find((r) => r.r_t === 'error');
  return row ? (row.r_name ?? 'failed') : undefined;
}
