import YAML from 'yaml';
import { objectTitle, type PropValue, type SchemaObject, type SchemaSnapshot } from './schema.js';

const Header = [
  '# The schema after every migration, written by pg-migrate-verify --update-snapshot.',
  '# Do not edit by hand: review its diff like code, and regenerate it when a migration changes.',
];

/**
 * The committed snapshot file: one YAML entry per object, titled as in findings
 * (`index public.users_email_idx on public.users`), sorted, so that it is identical across runs and
 * its git diff reads as the schema change.
 */
export function renderSnapshotFile(snapshot: SchemaSnapshot): string {
  const entries = Object.values(snapshot)
    .map((object) => [sortKey(object), objectTitle(object), sortedProps(object.props)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, title, props]) => [title, props] as const);
  const body = YAML.stringify(Object.fromEntries(entries), { lineWidth: 0, minContentWidth: 0 });
  return `${Header.join('\n')}\n${body}`;
}

/** A table's parts (columns, constraints, indexes, owned sequences, ...) follow the table itself. */
function sortKey(object: SchemaObject): string {
  const owned =
    typeof object.props.ownedBy === 'string'
      ? object.props.ownedBy.slice(0, object.props.ownedBy.lastIndexOf('.'))
      : undefined;
  const owner = object.parent ?? owned;
  return owner ? `${owner}\u0001${object.kind}\u0000${object.name}` : `${object.name}\u0000${object.kind}`;
}

function sortedProps(props: Record<string, PropValue>): Record<string, PropValue> {
  return Object.fromEntries(Object.entries(props).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Kinds whose title names a parent: `<kind> <name> on <parent>`. */
const ChildKinds = new Set(['constraint', 'index', 'trigger', 'policy', 'rule']);
const Kinds = [
  'materialized view',
  'composite type',
  'range type',
  'window function',
  'event trigger',
  'foreign table',
  'schema',
  'table',
  'view',
  'sequence',
  'column',
  'constraint',
  'index',
  'trigger',
  'policy',
  'rule',
  'enum',
  'domain',
  'function',
  'procedure',
  'aggregate',
  'extension',
];

/** The object a title names (the inverse of objectTitle). */
export function parseTitle(title: string): Omit<SchemaObject, 'props'> {
  const kind = Kinds.find((k) => title.startsWith(`${k} `)) ?? '';
  let name = kind ? title.slice(kind.length + 1) : title;
  let parent: string | undefined;
  if (ChildKinds.has(kind) && name.lastIndexOf(' on ') > 0) {
    parent = name.slice(name.lastIndexOf(' on ') + 4);
    name = name.slice(0, name.lastIndexOf(' on '));
  } else if (kind === 'column') parent = name.slice(0, name.lastIndexOf('.'));
  return { kind, name, ...(parent ? { parent } : {}) };
}

/** Reads a snapshot file back, keyed by title. Throws with a readable message on a broken file. */
export function parseSnapshotFile(text: string): SchemaSnapshot {
  const data = YAML.parse(text) as unknown;
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data))
    throw new Error('expected a mapping of objects to their properties');
  const out: SchemaSnapshot = {};
  for (const [title, props] of Object.entries(data as Record<string, unknown>)) {
    if (typeof props !== 'object' || props === null || Array.isArray(props))
      throw new Error(`entry '${title}' is not a mapping`);
    out[title] = { ...parseTitle(title), props: props as Record<string, PropValue> };
  }
  return out;
}

/** The same snapshot keyed by title, for comparison with a parsed file. */
export function byTitle(snapshot: SchemaSnapshot): SchemaSnapshot {
  return Object.fromEntries(Object.values(snapshot).map((object) => [objectTitle(object), object]));
}
