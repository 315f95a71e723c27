import type { SchemaObject, SchemaSnapshot } from './schema.js';

/** What a column or table did between the two schemas; absent: unchanged (drawn for context). */
export type Change = 'added' | 'dropped' | 'changed';

export interface PictureColumn {
  name: string;
  type: string;
  /** `PK`, `FK` or `PK,FK`. */
  key?: string;
  change?: Change;
  /** For a changed column: what changed, e.g. `type integer -> bigint`. */
  detail?: string;
}

export interface PictureTable {
  name: string;
  /** `context`: unchanged, drawn because a changed table's foreign key reaches it (its keys only). */
  change: Change | 'context';
  columns: PictureColumn[];
}

export interface PictureRelation {
  /** The table with the foreign key. */
  from: string;
  to: string;
  /** The constraint's name. */
  label: string;
  /** The foreign key's columns may be null: a row may have no parent. */
  optional: boolean;
}

/** The tables a set's changed migrations add, drop or alter, and what their foreign keys reach. */
export interface SchemaPicture {
  tables: PictureTable[];
  relations: PictureRelation[];
  /** Tables left out past the cap. */
  more: number;
}

/** At most this many tables in one picture: past it a diagram stops being readable. */
export const MaxPictureTables = 20;

const isTable = (o: SchemaObject | undefined) => o?.kind === 'table' || o?.kind === 'partitioned table';

/** The last part of a qualified name, without its quotes. */
function lastPart(name: string, parent: string): string {
  const tail = name.startsWith(`${parent}.`) ? name.slice(parent.length + 1) : name;
  return tail.startsWith('"') && tail.endsWith('"') ? tail.slice(1, -1).replaceAll('""', '"') : tail;
}

/** Column names inside the first parentheses of a constraint definition. */
function columnList(definition: string): string[] {
  const inner = /\(([^)]*)\)/.exec(definition)?.[1] ?? '';
  return inner
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean)
    .map((c) => (c.startsWith('"') && c.endsWith('"') ? c.slice(1, -1).replaceAll('""', '"') : c));
}

/** A snapshot's tables and each table's columns and constraints, read once. */
class Indexed {
  readonly tables: string[] = [];
  private readonly children = new Map<string, SchemaObject[]>();
  constructor(readonly snapshot: SchemaSnapshot) {
    for (const o of Object.values(snapshot)) {
      if (isTable(o)) this.tables.push(o.name);
      if (o.parent && (o.kind === 'column' || o.kind === 'constraint')) {
        const list = this.children.get(o.parent) ?? [];
        list.push(o);
        this.children.set(o.parent, list);
      }
    }
  }
  has(table: string): boolean {
    return isTable(this.snapshot[`table:${table}`]);
  }
  of(table: string, kind: 'column' | 'constraint'): SchemaObject[] {
    return (this.children.get(table) ?? []).filter((o) => o.kind === kind);
  }
}

interface Keys {
  primary: Set<string>;
  foreign: { label: string; columns: string[]; to: string }[];
}

function keysOf(index: Indexed, table: string): Keys {
  const keys: Keys = { primary: new Set(), foreign: [] };
  for (const o of index.of(table, 'constraint')) {
    const definition = String(o.props.definition ?? '');
    if (o.props.type === 'primary key') for (const c of columnList(definition)) keys.primary.add(c);
    if (o.props.type === 'foreign key') {
      const ref = /REFERENCES\s+(.+?)\(/.exec(definition)?.[1]?.trim() ?? '';
      // The definition names the table as the search path shows it (public's without a schema).
      const to = ref.includes('.')
        ? ref
        : index.has(`public.${ref}`)
          ? `public.${ref}`
          : (index.tables.find((t) => t.endsWith(`.${ref}`)) ?? ref);
      keys.foreign.push({ label: lastPart(o.name, table), columns: columnList(definition), to });
    }
  }
  return keys;
}

function columnsOf(index: Indexed, table: string): Map<string, SchemaObject> {
  const out = new Map<string, SchemaObject>();
  const order = (index.snapshot[`table:${table}`]?.props.columns as string[] | undefined) ?? [];
  const found = index.of(table, 'column');
  found.sort((a, b) => order.indexOf(lastPart(a.name, table)) - order.indexOf(lastPart(b.name, table)));
  for (const c of found) out.set(lastPart(c.name, table), c);
  return out;
}

function sameProps(a: SchemaObject, b: SchemaObject): boolean {
  return JSON.stringify(a.props) === JSON.stringify(b.props);
}

/** What changed in a column, for its comment. */
function columnDetail(before: SchemaObject, after: SchemaObject): string {
  const parts: string[] = [];
  for (const prop of new Set([...Object.keys(before.props), ...Object.keys(after.props)])) {
    const a = JSON.stringify(before.props[prop] ?? null);
    const b = JSON.stringify(after.props[prop] ?? null);
    if (a !== b) parts.push(`${prop} ${before.props[prop] ?? 'none'} -> ${after.props[prop] ?? 'none'}`);
  }
  return parts.join(', ');
}

function keyOf(column: string, keys: Keys): string | undefined {
  const pk = keys.primary.has(column);
  const fk = keys.foreign.some((f) => f.columns.includes(column));
  return pk && fk ? 'PK,FK' : pk ? 'PK' : fk ? 'FK' : undefined;
}

/**
 * The picture of what changed between `before` and `after` (the schema before the checked
 * migrations and after them): `changed` names the tables they touch. Undefined when no table
 * changed (functions or types alone draw nothing).
 */
export function schemaPicture(
  before: SchemaSnapshot,
  after: SchemaSnapshot,
  changed: readonly string[],
): SchemaPicture | undefined {
  const old = new Indexed(before);
  const now = new Indexed(after);
  // Tables that exist on one side at least; one created and dropped again in between has none.
  const tables = changed.filter((t) => old.has(t) || now.has(t));
  if (!tables.length) return undefined;
  const drawn: PictureTable[] = [];
  const relations: PictureRelation[] = [];
  for (const table of tables.slice(0, MaxPictureTables)) {
    const change: Change = !old.has(table) ? 'added' : !now.has(table) ? 'dropped' : 'changed';
    const side = now.has(table) ? now : old;
    const keys = keysOf(side, table);
    const was = columnsOf(old, table);
    const is = columnsOf(now, table);
    const columns: PictureColumn[] = [];
    for (const [name, c] of change === 'dropped' ? was : is) {
      const prior = was.get(name);
      const key = keyOf(name, keys);
      const columnChange: Change | undefined =
        change !== 'changed' ? undefined : !prior ? 'added' : sameProps(prior, c) ? undefined : 'changed';
      columns.push({
        name,
        type: String(c.props.type ?? ''),
        ...(key ? { key } : {}),
        ...(columnChange ? { change: columnChange } : {}),
        ...(columnChange === 'changed' && prior ? { detail: columnDetail(prior, c) } : {}),
      });
    }
    if (change === 'changed')
      for (const [name, c] of was)
        if (!is.has(name)) columns.push({ name, type: String(c.props.type ?? ''), change: 'dropped' });
    // A changed table with no column marked: its indexes or constraints changed.
    drawn.push({ name: table, change, columns });
    const sideColumns = side === now ? is : was;
    for (const fk of keys.foreign) {
      const optional = fk.columns.some((c) => sideColumns.get(c)?.props.notNull !== true);
      relations.push({ from: table, to: fk.to, label: fk.label, optional });
    }
  }
  // What the foreign keys reach and is not drawn yet: its keys only, for context, within the cap.
  for (const r of relations) {
    if (drawn.length >= MaxPictureTables) break;
    if (drawn.some((t) => t.name === r.to)) continue;
    const side = now.has(r.to) ? now : old;
    if (!side.has(r.to)) continue;
    const keys = keysOf(side, r.to);
    const columns = [...columnsOf(side, r.to)]
      .filter(([name]) => keys.primary.has(name))
      .map(([name, c]) => ({ name, type: String(c.props.type ?? ''), key: 'PK' }));
    drawn.push({ name: r.to, change: 'context', columns });
  }
  const names = new Set(drawn.map((t) => t.name));
  return {
    tables: drawn,
    relations: relations.filter((r) => names.has(r.from) && names.has(r.to)),
    more: Math.max(0, tables.length - MaxPictureTables),
  };
}

/**
 * Text from the database inside a quoted Mermaid string: no quotes, backticks or line breaks, and
 * none of what Mermaid reads there (`%` starts a comment, `#` an entity; `\\` breaks a label).
 */
function quoted(text: string): string {
  const clean = text
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it replaces.
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .replaceAll('"', "'")
    .replaceAll('`', "'")
    .replaceAll('#', '＃')
    .replaceAll('%', '％')
    .replaceAll('\\', '＼')
    .replaceAll(';', ',')
    .trim();
  return `"${clean.length > 120 ? `${clean.slice(0, 117)}...` : clean}"`;
}

/** A bare Mermaid word (an attribute's type or name): letters, digits and underscores, never a key word. */
function word(text: string): string {
  let w = text.replace(/[^A-Za-z0-9_]+/g, '_').replace(/^_+|_+$/g, '') || 'x';
  if (/^[0-9]/.test(w)) w = `_${w}`;
  if (/^(PK|FK|UK)$/i.test(w)) w = `${w}_`;
  return w.slice(0, 60);
}

/** The picture as a Mermaid `erDiagram`: every name escaped, changes marked in the comments. */
export function renderErd(picture: SchemaPicture): string {
  const ids = new Map(picture.tables.map((t, i) => [t.name, `t${i + 1}`]));
  const lines = ['erDiagram'];
  for (const table of picture.tables) {
    const mark = table.change === 'context' ? '' : ` (${table.change})`;
    lines.push(`  ${ids.get(table.name)}[${quoted(`${table.name}${mark}`)}] {`);
    for (const c of table.columns) {
      const type = word(c.type);
      const name = word(c.name);
      const notes = [
        c.change ? (c.detail ? `${c.change}: ${c.detail}` : c.change) : '',
        name !== c.name ? c.name : '',
        type !== c.type && !c.detail?.includes(c.type) ? c.type : '',
      ].filter(Boolean);
      lines.push(
        `    ${type} ${name}${c.key ? ` ${c.key}` : ''}${notes.length ? ` ${quoted(notes.join(' · '))}` : ''}`,
      );
    }
    lines.push('  }');
  }
  for (const r of picture.relations)
    lines.push(`  ${ids.get(r.from)} }o--${r.optional ? 'o|' : '||'} ${ids.get(r.to)} : ${quoted(r.label)}`);
  return lines.join('\n');
}
