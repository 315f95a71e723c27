import pg from 'pg';
import { BookkeepingSchema } from '../core/bookkeeping.js';
import type { PropValue, SchemaObject, SchemaSnapshot } from '../core/schema.js';
import { DependentsSql, familySql, type RootClass, RootClasses, rootsSql } from './snapshot-sql.js';

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

// Each statement is prepared once per connection: they are long, and planning them on every step
// cost more than running them.
const FamilySql = Object.fromEntries(
  [...RootClasses, 'all'].map((c) => [c, familySql(c as RootClass | 'all')]),
) as Record<RootClass | 'all', string>;

function readFamilies(client: pg.Client, which: RootClass | 'all', roots: number[], exclusions: Exclusions) {
  return client.query<Row>({
    name: `pgmv-family-${which}`,
    text: FamilySql[which],
    values: [roots, exclusions.schemas, exclusions.tables],
  });
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

/** Reads the whole schema. */
export async function readSnapshot(client: pg.Client, exclusions: Exclusions): Promise<SchemaSnapshot> {
  const { rows } = await readFamilies(client, 'all', [], exclusions);
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

/**
 * A statement that rides on a refresh's read of the event log, so that both cost one round trip:
 * its CTEs run in the same statement (a data-modifying one runs whether or not it is read), and
 * its SELECT returns one jsonb column `rider` whose values the refresh hands back.
 */
export interface Rider {
  /** Names the prepared statement: the text must be the same on every call of one name. */
  name: string;
  /** CTEs without the leading WITH: `a AS (...), b AS (...)`. */
  ctes?: string;
  select: string;
  values: unknown[];
}

/** Values of some keys as they were when a mark was taken. */
export class Mark {
  readonly journal = new Map<string, SchemaObject | undefined>();
}

const InstallSql = `
CREATE TABLE IF NOT EXISTS ${BookkeepingSchema}.ddl_log (classid text, objid oid, dropped boolean);
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
DROP EVENT TRIGGER IF EXISTS ${BookkeepingSchema}_ddl;
DROP EVENT TRIGGER IF EXISTS ${BookkeepingSchema}_drop;
CREATE EVENT TRIGGER ${BookkeepingSchema}_ddl ON ddl_command_end EXECUTE FUNCTION ${BookkeepingSchema}.log_ddl();
CREATE EVENT TRIGGER ${BookkeepingSchema}_drop ON sql_drop EXECUTE FUNCTION ${BookkeepingSchema}.log_drop();
`;

/** More touched roots than this: a full read is cheaper than the scoped reads (bench: 1000 migrations). */
const ManyRoots = 400;

/**
 * The schema of one database, kept in memory and brought up to date after each step by re-reading
 * only what the step touched. Event triggers (`ddl_command_end`, `sql_drop`) record the touched
 * objects, from any session; where they cannot be created (no superuser), every refresh is a full
 * read: slower, same result.
 */
export class CatalogTracker {
  private readonly objects = new Map<string, { object: SchemaObject; root: string }>();
  private readonly byRoot = new Map<string, Set<string>>();
  private readonly rootOf = new Map<string, string>();
  private readonly marks = new Set<Mark>();

  private constructor(
    readonly mode: 'incremental' | 'full',
    private readonly exclusions: Exclusions,
  ) {}

  /** Installs the event triggers (when allowed) and reads the whole schema once. */
  static async open(client: pg.Client, exclusions: Exclusions): Promise<CatalogTracker> {
    let mode: 'incremental' | 'full' = 'incremental';
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${BookkeepingSchema}`);
      await client.query(InstallSql);
    } catch (error) {
      if ((error as pg.DatabaseError).code !== '42501') throw error;
      mode = 'full';
    }
    const tracker = new CatalogTracker(mode, exclusions);
    await tracker.reload(client);
    if (mode === 'incremental') await client.query(`DELETE FROM ${BookkeepingSchema}.ddl_log`);
    return tracker;
  }

  /**
   * Brings the in-memory schema up to date with the database; returns the rider's values, read in
   * the same round trip as the log.
   */
  async refresh(client: pg.Client, rider?: Rider): Promise<unknown[]> {
    if (this.mode === 'full') {
      const carried = rider
        ? (
            await client.query<{ rider: unknown }>({
              text: rider.ctes ? `WITH ${rider.ctes} ${rider.select}` : rider.select,
              values: rider.values,
            })
          ).rows.map((r) => r.rider)
        : [];
      await this.reload(client);
      return carried;
    }
    const { rows } = await client.query<{
      root_class: string | null;
      root_oid: number;
      dropped: boolean;
      rider: unknown;
    }>({
      name: rider ? `pgmv-roots-${rider.name}` : 'pgmv-roots',
      text: rootsSql(rider),
      values: rider?.values ?? [],
    });
    const carried = rows.filter((r) => r.root_class === null).map((r) => r.rider);
    const touched = rows.filter((r) => r.root_class !== null) as {
      root_class: string;
      root_oid: number;
      dropped: boolean;
    }[];
    // After many steps at once (a replay of what a base branch or a target has), one full read is
    // cheaper than reading each touched family.
    if (touched.length > ManyRoots) await this.reload(client);
    else if (touched.length) await this.readTouched(client, touched);
    return carried;
  }

  private async readTouched(
    client: pg.Client,
    touched: { root_class: string; root_oid: number; dropped: boolean }[],
  ): Promise<void> {
    const roots = new Map<RootClass, Set<number>>();
    // Roots dropped themselves: their whole family is gone, with nothing to read.
    const gone = new Set<string>();
    for (const entry of touched) {
      const key = `${entry.root_class}:${entry.root_oid}`;
      if (entry.dropped && this.rootOf.get(key) === key) gone.add(key);
    }
    for (const entry of touched) {
      if (!entry.dropped) addRoot(roots, entry.root_class, entry.root_oid);
      else {
        // Gone from the catalog: its root is known only from what we read before.
        const root = this.rootOf.get(`${entry.root_class}:${entry.root_oid}`);
        if (root && !gone.has(root)) addRoot(roots, ...splitRoot(root));
      }
    }
    for (const root of gone) {
      const [cls, oid] = splitRoot(root);
      if (roots.get(cls as RootClass)?.has(oid)) gone.delete(root);
    }
    const renamed = await this.readRoots(client, roots, gone);
    if (!renamed.length) return;
    // A renamed table, column, type, sequence, function or schema changes how other objects read
    // (foreign keys, views, defaults, triggers that name it): read those too.
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
   * Reads the families of `roots` and replaces them, and drops those of `gone` (roots that were
   * dropped); returns the roots that lost a name others may use.
   */
  private async readRoots(
    client: pg.Client,
    roots: Map<RootClass, Set<number>>,
    gone: ReadonlySet<string> = new Set(),
  ): Promise<string[]> {
    const rows: Row[] = [];
    const considered = new Set<string>(gone);
    for (const [cls, oids] of roots) {
      for (const oid of oids) considered.add(`${cls}:${oid}`);
      rows.push(...(await readFamilies(client, cls, [...oids], this.exclusions)).rows);
    }
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

  private async reload(client: pg.Client): Promise<void> {
    const { rows } = await readFamilies(client, 'all', [], this.exclusions);
    const considered = new Set([...this.byRoot.keys(), ...rows.map((r) => `${r.root_class}:${r.root_oid}`)]);
    this.replace(considered, rows);
  }

  /** Replaces the families of `roots` with `rows`, journaling what changes for open marks. */
  private replace(roots: Set<string>, rows: Row[]): void {
    const fresh = new Map<string, { object: SchemaObject; root: string }>();
    for (const row of rows) {
      if (!row.key) continue;
      const root = `${row.root_class}:${row.root_oid}`;
      fresh.set(row.key, { object: objectOf(row), root });
      if (row.obj_class) this.rootOf.set(`${row.obj_class}:${row.obj_oid}`, root);
    }
    for (const root of roots) {
      for (const key of this.byRoot.get(root) ?? []) {
        if (!fresh.has(key) && this.objects.get(key)?.root === root) this.set(key, undefined);
      }
      this.byRoot.delete(root);
    }
    for (const [key, entry] of fresh) this.set(key, entry.object, entry.root);
  }

  private set(key: string, object: SchemaObject | undefined, root?: string): void {
    const old = this.objects.get(key);
    for (const mark of this.marks) if (!mark.journal.has(key)) mark.journal.set(key, old?.object);
    if (old && old.root !== root) this.byRoot.get(old.root)?.delete(key);
    if (!object || !root) {
      this.objects.delete(key);
      return;
    }
    this.objects.set(key, { object, root });
    const keys = this.byRoot.get(root) ?? new Set<string>();
    keys.add(key);
    this.byRoot.set(root, keys);
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
    for (const key of keys) {
      const value = mark.journal.has(key) ? mark.journal.get(key) : this.objects.get(key)?.object;
      if (value) out[key] = value;
    }
    return out;
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
