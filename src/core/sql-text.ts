import { loadModule, parseSync } from 'libpg-query';

let loaded: Promise<void> | undefined;

/** Loads the parser (WASM) once; call before the sync functions below. */
export function loadSqlParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

export interface Statement {
  /** The statement text, without the trailing semicolon. */
  sql: string;
  /** Index of its first character in the text it came from (JS string index). */
  start: number;
}

type ParsedStatement = { stmt?: Record<string, unknown>; stmt_location?: number; stmt_len?: number };

function parseStatements(text: string): { parsed: ParsedStatement[]; bytes: Buffer } | undefined {
  try {
    const result = parseSync(text) as unknown as { stmts?: ParsedStatement[] };
    return { parsed: result.stmts ?? [], bytes: Buffer.from(text, 'utf8') };
  } catch {
    // Not parseable here (a syntax error, or syntax newer than our parser): the server will say.
    return undefined;
  }
}

/**
 * Splits SQL into statements with Postgres's own grammar (dollar quotes, nested comments and
 * `BEGIN ATOMIC` bodies included). Undefined when the text does not parse.
 */
export function splitStatements(text: string): Statement[] | undefined {
  const result = parseStatements(text);
  if (!result) return undefined;
  const { parsed, bytes } = result;
  return parsed.map((s) => {
    // Parser locations are byte offsets into the UTF-8 text.
    const startByte = s.stmt_location ?? 0;
    const endByte = s.stmt_len ? startByte + s.stmt_len : bytes.length;
    const start = bytes.subarray(0, startByte).toString('utf8').length;
    const sql = bytes.subarray(startByte, endByte).toString('utf8');
    const lead = sql.length - sql.trimStart().length;
    return { sql: sql.trim(), start: start + lead };
  });
}

/** Why the text cannot run inside a transaction block, or undefined when it can. */
export function transactionBlocker(text: string): string | undefined {
  // Parsing costs ~0.1 ms a file; most files cannot hold a blocker at all.
  if (!/\b(concurrently|vacuum|analy[sz]e|database|system|tablespace|subscription)\b/i.test(text))
    return undefined;
  const result = parseStatements(text);
  if (!result) return undefined;
  for (const { stmt } of result.parsed) {
    if (!stmt) continue;
    const [kind, node] = Object.entries(stmt)[0] ?? [];
    const n = (node ?? {}) as Record<string, unknown>;
    switch (kind) {
      case 'IndexStmt':
        if (n.concurrent) return 'CREATE INDEX CONCURRENTLY';
        break;
      case 'DropStmt':
        if (n.concurrent) return 'DROP INDEX CONCURRENTLY';
        break;
      case 'ReindexStmt': {
        const params = (n.params ?? []) as { DefElem?: { defname?: string } }[];
        if (params.some((p) => p.DefElem?.defname === 'concurrently')) return 'REINDEX CONCURRENTLY';
        break;
      }
      case 'VacuumStmt':
        return n.is_vacuumcmd === false ? 'ANALYZE' : 'VACUUM';
      case 'CreatedbStmt':
        return 'CREATE DATABASE';
      case 'DropdbStmt':
        return 'DROP DATABASE';
      case 'AlterSystemStmt':
        return 'ALTER SYSTEM';
      case 'CreateTableSpaceStmt':
        return 'CREATE TABLESPACE';
      case 'DropTableSpaceStmt':
        return 'DROP TABLESPACE';
      case 'CreateSubscriptionStmt':
        return 'CREATE SUBSCRIPTION';
    }
  }
  return undefined;
}

/** True when the text holds its own BEGIN / COMMIT / ROLLBACK. */
export function hasTransactionControl(text: string): boolean {
  if (!/\b(begin|commit|rollback|abort|end|start|savepoint|release|prepare)\b/i.test(text)) return false;
  // Most of the rest start no statement with these words once function bodies ($$ ... $$), strings
  // and comments are set aside; only the others need the parser (its WASM heap does not shrink,
  // and each range of a long walk asks this of every migration before it). Backslashes (E'...'
  // strings) leave it to the parser.
  const bare = text
    .replace(/\$([A-Za-z_]\w*)?\$[\s\S]*?\$\1\$/g, ' ')
    .replace(/'(?:[^']|'')*'/g, ' ')
    .replace(/--[^\n]*/g, ' ');
  if (
    !text.includes('\\') &&
    !/(^|;)\s*(begin|commit|rollback|abort|end|start|savepoint|release|prepare)\b/i.test(bare)
  )
    return false;
  const result = parseStatements(text);
  return !!result?.parsed.some((s) => s.stmt && 'TransactionStmt' in s.stmt);
}

/** `-- pg-migrate-verify: <word>` directives in a migration file. */
export function directivesOf(text: string): Set<string> {
  const found = new Set<string>();
  for (const match of text.matchAll(/^\s*--\s*pg-migrate-verify:\s*([a-z-]+)/gim)) {
    found.add((match[1] ?? '').toLowerCase());
  }
  return found;
}

/** 1-based line of the JS string index `index` in `text`. */
export function lineAt(text: string, index: number): number {
  let line = 1;
  const end = Math.min(index, text.length);
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * JS string index of Postgres's error `position` (1-based, counted in characters, i.e. code points)
 * in the query text that was sent.
 */
export function indexOfPosition(text: string, position: number): number {
  let index = 0;
  let chars = 1;
  while (chars < position && index < text.length) {
    const code = text.codePointAt(index) ?? 0;
    index += code > 0xffff ? 2 : 1;
    chars++;
  }
  return index;
}

/** Statements whose every touched schema object is named in them (see `reachOf`). */
const Named = new Set([
  'CreateStmt',
  'AlterTableStmt',
  'IndexStmt',
  'ViewStmt',
  'CreateEnumStmt',
  'CompositeTypeStmt',
  'CreateDomainStmt',
  'CreateFunctionStmt',
  'CreateTrigStmt',
  'CreateSeqStmt',
  'CommentStmt',
  'CreateSchemaStmt',
  // Ours around a step (BEGIN, RESET lock_timeout), and the migration's own settings.
  'TransactionStmt',
  'VariableSetStmt',
]);

/** The object a COMMENT names: its last name, the table's for a column; undefined for the others. */
const CommentTargets: Record<string, (names: string[]) => string | undefined> = {
  OBJECT_TABLE: (n) => n.at(-1),
  OBJECT_VIEW: (n) => n.at(-1),
  OBJECT_MATVIEW: (n) => n.at(-1),
  OBJECT_FOREIGN_TABLE: (n) => n.at(-1),
  OBJECT_TYPE: (n) => n.at(-1),
  OBJECT_DOMAIN: (n) => n.at(-1),
  OBJECT_SCHEMA: (n) => n.at(-1),
  OBJECT_FUNCTION: (n) => n.at(-1),
  OBJECT_COLUMN: (n) => n.at(-2),
};

/** The `sval`s of a list of String nodes, wherever they sit in a parse tree node. */
function strings(node: unknown): string[] {
  const out: string[] = [];
  const walk = (n: unknown) => {
    if (Array.isArray(n)) for (const item of n) walk(item);
    else if (n && typeof n === 'object') {
      const sval = (n as { String?: { sval?: string } }).String?.sval;
      if (sval !== undefined) out.push(sval);
      else for (const v of Object.values(n)) walk(v);
    }
  };
  walk(node);
  return out;
}

/**
 * The names (lower case, unqualified) of the schema objects a step's SQL may change, when every
 * statement in it names what it changes (creating or altering a table, creating an index, view,
 * type, function, trigger, sequence or schema; a comment on one), with every relation it mentions
 * besides (a foreign key's table, a view's). Undefined for anything else (DML, DO blocks, a function
 * called, a drop or rename, a sequence made for a serial column and altered by its name, text the
 * parser does not take): what it touches is known only once it ran.
 * Steps whose names differ cannot change each other's objects, so their catalog reads can wait for
 * the last of them; the walk checks afterwards that no root was two steps' (see `splitTake`).
 */
export function reachOf(text: string): Set<string> | undefined {
  const result = parseStatements(text);
  if (!result) return undefined;
  const names = new Set<string>();
  const relations = (n: unknown) => {
    if (Array.isArray(n)) for (const item of n) relations(item);
    else if (n && typeof n === 'object') {
      const relname = (n as { relname?: unknown }).relname;
      if (typeof relname === 'string') names.add(relname.toLowerCase());
      for (const v of Object.values(n)) if (v && typeof v === 'object') relations(v);
    }
  };
  for (const { stmt } of result.parsed) {
    if (!stmt) continue;
    const [kind, node] = Object.entries(stmt)[0] ?? [];
    if (!kind || !Named.has(kind)) return undefined;
    const n = (node ?? {}) as Record<string, unknown>;
    const own = (list: unknown) => {
      const name = strings(list).at(-1);
      if (name === undefined) return false;
      names.add(name.toLowerCase());
      return true;
    };
    switch (kind) {
      case 'CreateEnumStmt':
        if (!own(n.typeName)) return undefined;
        break;
      case 'CreateDomainStmt':
        if (!own(n.domainname)) return undefined;
        break;
      case 'CreateFunctionStmt':
        if (!own(n.funcname)) return undefined;
        break;
      case 'CreateSchemaStmt':
        if (n.schemaElts || typeof n.schemaname !== 'string') return undefined;
        names.add(n.schemaname.toLowerCase());
        break;
      case 'CommentStmt': {
        const target = CommentTargets[String(n.objtype)]?.(strings(n.object));
        if (target === undefined) return undefined;
        names.add(target.toLowerCase());
        break;
      }
    }
    relations(n);
  }
  return names;
}
