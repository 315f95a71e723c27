/** A property value as read from the catalog: JSON-safe, compared by value. */
export type PropValue = string | number | boolean | null | PropValue[];

/** One schema object: a table, a column, an index, an enum, ... */
export interface SchemaObject {
  /** e.g. `table`, `column`, `index`, `constraint`, `enum`, `function`. */
  kind: string;
  /** Qualified name as users write it: `public.users`, `public.users.email`, `public.f(integer)`. */
  name: string;
  /** The table an index, column, constraint, trigger or policy belongs to. */
  parent?: string;
  props: Record<string, PropValue>;
}

/** The whole schema as plain JSON, keyed by `kind:name`. */
export type SchemaSnapshot = Record<string, SchemaObject>;

export interface PropChange {
  prop: string;
  before: PropValue | undefined;
  after: PropValue | undefined;
}

/** One object-level difference between two snapshots. */
export interface SchemaDifference {
  key: string;
  object: SchemaObject;
  change: 'added' | 'removed' | 'changed';
  /** For `changed`: the properties that differ. */
  props: PropChange[];
  /** A column order difference alone is a warning; anything else is an error. */
  severity: 'error' | 'warning';
  /** For a table added or removed whole: how many of its parts (columns, indexes, ...) came or went with it. */
  carries?: Record<string, number>;
}

/** Readable names for property keys in messages. */
const PropLabels: Record<string, string> = {
  notNull: 'not null',
  forceRowSecurity: 'forced row security',
  rowSecurity: 'row security',
  replicaIdentity: 'replica identity',
  partitionKey: 'partition key',
  partitionOf: 'partition of',
  ownedBy: 'owned by',
  accessMethod: 'access method',
  returns: 'return type',
  baseType: 'base type',
  inherits: 'parent tables',
};

function equal(a: PropValue | undefined, b: PropValue | undefined): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined || a === null || b === null) return (a ?? null) === (b ?? null);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  return false;
}

function sameMembers(a: PropValue | undefined, b: PropValue | undefined): boolean {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  const sorted = (x: PropValue[]) => x.map((v) => JSON.stringify(v)).sort();
  return equal(sorted(a), sorted(b));
}

/** Differences of one object present on both sides; undefined when it is the same. */
export function diffObject(
  key: string,
  before: SchemaObject,
  after: SchemaObject,
): SchemaDifference | undefined {
  const props: PropChange[] = [];
  for (const prop of new Set([...Object.keys(before.props), ...Object.keys(after.props)])) {
    if (!equal(before.props[prop], after.props[prop]))
      props.push({ prop, before: before.props[prop], after: after.props[prop] });
  }
  if (!props.length) return undefined;
  // The same columns in another order: the table works, but `SELECT *` and COPY do not agree.
  const orderOnly =
    props.length === 1 && props[0]?.prop === 'columns' && sameMembers(props[0].before, props[0].after);
  return { key, object: after, change: 'changed', props, severity: orderOnly ? 'warning' : 'error' };
}

/**
 * Object-level differences from `before` to `after`, sorted by key. With `keys`, only those keys are
 * compared (the objects a step touched); without, every key on either side.
 */
export function diffSnapshots(
  before: SchemaSnapshot,
  after: SchemaSnapshot,
  keys?: Iterable<string>,
): SchemaDifference[] {
  return collapse(rawDiff(before, after, keys));
}

function rawDiff(before: SchemaSnapshot, after: SchemaSnapshot, keys?: Iterable<string>): SchemaDifference[] {
  const all = keys ? new Set(keys) : new Set([...Object.keys(before), ...Object.keys(after)]);
  const out: SchemaDifference[] = [];
  for (const key of [...all].sort()) {
    const a = before[key];
    const b = after[key];
    if (a && !b) out.push({ key, object: a, change: 'removed', props: [], severity: 'error' });
    else if (!a && b) out.push({ key, object: b, change: 'added', props: [], severity: 'error' });
    else if (a && b) {
      const changed = diffObject(key, a, b);
      if (changed) out.push(changed);
    }
  }
  return out;
}

/**
 * Says each thing once: a table that appears or disappears carries its columns, constraints,
 * indexes, triggers and owned sequences with it (counted, not listed), and a table whose column list
 * changed only because columns were added or dropped is not reported beside those columns.
 */
function collapse(diffs: SchemaDifference[]): SchemaDifference[] {
  const whole = new Map<string, SchemaDifference>();
  for (const d of diffs) {
    if (d.change !== 'changed' && d.object.kind !== 'column' && !d.object.parent)
      whole.set(`${d.change}:${d.object.name}`, d);
  }
  const ownerOf = (d: SchemaDifference) => {
    if (d.object.parent) return d.object.parent;
    const owned = d.object.props.ownedBy;
    return typeof owned === 'string' ? owned.slice(0, owned.lastIndexOf('.')) : undefined;
  };
  const carried = new Map<SchemaDifference, Record<string, number>>();
  const columnsMoved = new Set<string>();
  const out: SchemaDifference[] = [];
  for (const d of diffs) {
    const owner = ownerOf(d);
    const parent = owner && d.change !== 'changed' ? whole.get(`${d.change}:${owner}`) : undefined;
    if (parent) {
      const counts = carried.get(parent) ?? {};
      counts[d.object.kind] = (counts[d.object.kind] ?? 0) + 1;
      carried.set(parent, counts);
      continue;
    }
    if (d.object.kind === 'column' && d.change !== 'changed' && d.object.parent)
      columnsMoved.add(d.object.parent);
    out.push(d);
  }
  return out
    .filter(
      (d) =>
        !(
          d.change === 'changed' &&
          d.severity === 'error' &&
          columnsMoved.has(d.object.name) &&
          d.props.every((p) => p.prop === 'columns')
        ),
    )
    .map((d) => (carried.has(d) ? { ...d, carries: carried.get(d) } : d));
}

function show(value: PropValue | undefined): string {
  if (value === undefined || value === null) return 'none';
  if (Array.isArray(value)) return value.length ? value.map((v) => show(v)).join(', ') : 'none';
  if (typeof value === 'string') {
    const flat = value.replace(/\s+/g, ' ').trim();
    return flat.length > 160 ? `${flat.slice(0, 157)}...` : flat;
  }
  return String(value);
}

/** `index public.users_email_idx on public.users` */
export function objectTitle(object: SchemaObject): string {
  return `${object.kind} ${object.name}${object.parent && object.kind !== 'column' ? ` on ${object.parent}` : ''}`;
}

/**
 * One line per difference, readable on its own, with the two sides named by the caller:
 * `index public.users_email_idx on public.users: present after down, absent before up`.
 */
export function describeDifference(d: SchemaDifference, sides: { before: string; after: string }): string {
  const title = objectTitle(d.object);
  const parts = d.carries
    ? ` (with its ${Object.entries(d.carries)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : kind.endsWith('x') ? 'es' : 's'}`)
        .join(', ')})`
    : '';
  if (d.change === 'added') return `${title}${parts}: present ${sides.after}, absent ${sides.before}`;
  if (d.change === 'removed') return `${title}${parts}: absent ${sides.after}, present ${sides.before}`;
  if (d.severity === 'warning') {
    const [p] = d.props;
    return `${title}: column order differs (${sides.before}: ${show(p?.before)}; ${sides.after}: ${show(p?.after)})`;
  }
  return d.props
    .map((p) => {
      const label = PropLabels[p.prop] ?? p.prop;
      return `${title}: ${label} ${label.endsWith('s') ? 'differ' : 'differs'} (${sides.before}: ${show(p.before)}; ${sides.after}: ${show(p.after)})`;
    })
    .join('\n');
}

/** What a step changed, one short line per object, for the report: `+ table public.users`. */
export function summarizeChanges(diffs: SchemaDifference[]): string[] {
  return diffs.map((d) => {
    const sign = d.change === 'added' ? '+' : d.change === 'removed' ? '-' : '~';
    return `${sign} ${objectTitle(d.object)}`;
  });
}

/** Tables the differences are about: tables themselves, and the tables of columns, indexes, constraints, ... */
export function touchedTables(diffs: readonly SchemaDifference[]): string[] {
  const tables = new Set<string>();
  for (const d of diffs) {
    if (d.object.kind === 'table' || d.object.kind === 'partitioned table') tables.add(d.object.name);
    else if (d.object.parent) tables.add(d.object.parent);
  }
  return [...tables].sort();
}
