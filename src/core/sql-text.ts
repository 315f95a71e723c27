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

/** A statement's words (lower case; quoted names as written, lower-cased too) and punctuation. */
function tokens(sql: string): string[] | undefined {
  const out: string[] = [];
  const re = /\s+|"((?:[^"]|"")*)"|([A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)|(\d[\w.]*)|(::|[^\s\w"])/gy;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < sql.length) {
    m = re.exec(sql);
    if (!m) return undefined;
    if (m[1] !== undefined) out.push(m[1].replaceAll('""', '"').toLowerCase());
    else if (m[2] !== undefined) out.push(m[2].toLowerCase());
    else if (m[3] !== undefined) out.push('0');
    else if (m[4] !== undefined) out.push(m[4]);
  }
  return out;
}

/**
 * SQL without comments, string literals and dollar-quoted bodies (each a lone `''`), split into
 * statements; undefined where that is not certain (a backslash: E'' strings; an unclosed quote).
 */
function bareStatements(text: string): string[] | undefined {
  if (text.includes('\\')) return undefined;
  const out: string[] = [];
  // Text that starts nothing to set aside goes in whole runs.
  const plain = /[^-/'$";]+/y;
  const dollar = /\$(?:[A-Za-z_]\w*)?\$/y;
  if (!knownHead(text, 0)) return undefined;
  let i = 0;
  while (i < text.length) {
    plain.lastIndex = i;
    if (plain.exec(text)) {
      out.push(text.slice(i, plain.lastIndex));
      i = plain.lastIndex;
      continue;
    }
    const c = text[i] as string;
    if (c === ';') {
      // A statement that cannot name what it changes ends the reading here (a long INSERT is not read).
      if (!knownHead(text, i + 1)) return undefined;
      out.push(c);
      i++;
      continue;
    }
    dollar.lastIndex = i;
    const tag = c === '$' ? dollar.exec(text)?.[0] : undefined;
    if (text.startsWith('--', i)) {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (text.startsWith('/*', i)) {
      let depth = 0;
      do {
        if (text.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (text.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else i++;
      } while (depth > 0 && i < text.length);
      if (depth > 0) return undefined;
      out.push(' ');
    } else if (c === "'") {
      const end = /'(?:[^']|'')*'/y;
      end.lastIndex = i;
      if (!end.exec(text)) return undefined;
      i = end.lastIndex;
      out.push(" '' ");
    } else if (tag) {
      const end = text.indexOf(tag, i + tag.length);
      if (end < 0) return undefined;
      i = end + tag.length;
      out.push(" '' ");
    } else if (c === '"') {
      const end = /"(?:[^"]|"")*"/y;
      end.lastIndex = i;
      if (!end.exec(text)) return undefined;
      out.push(text.slice(i, end.lastIndex));
      i = end.lastIndex;
    } else {
      out.push(c);
      i++;
    }
  }
  return out.join('').split(';');
}

/** A possibly qualified name at `at`: its parts, and where it ends. */
function nameAt(words: string[], at: number): { parts: string[]; end: number } | undefined {
  const parts: string[] = [];
  let i = at;
  for (;;) {
    const w = words[i];
    if (w === undefined || !/^[^\s(),;.:'=<>+\-*/[\]]/.test(w) || w === "''") return undefined;
    parts.push(w);
    if (words[i + 1] !== '.') return { parts, end: i + 1 };
    i += 2;
  }
}

/** Skips the words in `optional` at `at`, in any order. */
function skip(words: string[], at: number, ...optional: string[]): number {
  let i = at;
  while (optional.includes(words[i] ?? '')) i++;
  return i;
}

/** The first words of the statements `reachOfStatement` knows. */
const Heads = new Set(['create', 'alter', 'comment', 'begin', 'reset', 'set']);

/**
 * False when the statement at `at` starts with a word `reachOfStatement` does not know (it names
 * nothing it changes): what follows it need not be read.
 */
function knownHead(text: string, at: number): boolean {
  const head = /\s*([A-Za-z]+)/y;
  head.lastIndex = at;
  const word = head.exec(text)?.[1]?.toLowerCase();
  return !word || Heads.has(word);
}

/** The names a statement (its words) may change, when it names them; undefined when not known. */
function reachOfStatement(w: string[]): string[] | undefined {
  if (!w.length) return [];
  const [first] = w;
  // Ours around a step (BEGIN, RESET lock_timeout), and a migration's own settings.
  if (first === 'begin' || first === 'reset' || first === 'set') return [];
  const last = (at: number) => nameAt(w, at)?.parts.at(-1);
  // Every table named after these words: a foreign key's, a parent's, a partition's.
  const mentioned = (from: number) => {
    const out: string[] = [];
    for (let i = from; i < w.length; i++)
      if (['references', 'like', 'inherits', 'partition', 'of'].includes(w[i] as string)) {
        const n = last(w[i + 1] === '(' ? i + 2 : i + 1);
        if (n) out.push(n);
      }
    return out;
  };
  if (first === 'create') {
    let i = skip(w, 1, 'or', 'replace', 'temp', 'temporary', 'unlogged', 'global', 'local', 'unique');
    const what = w[i];
    i = skip(w, i + 1, 'if', 'not', 'exists', 'concurrently');
    if (what === 'table') {
      const name = nameAt(w, i);
      // CREATE TABLE ... AS runs a query: what it may call is not known.
      if (!name || (w.includes('as') && depthZero(w, 'as'))) return undefined;
      return [name.parts.at(-1) as string, ...mentioned(name.end)];
    }
    if (what === 'index') {
      const on = w.indexOf('on', i);
      const table = on < 0 ? undefined : last(skip(w, on + 1, 'only'));
      return table ? [table] : undefined;
    }
    if (what === 'view' || (what === 'materialized' && w[i] === 'view') || what === 'recursive') {
      const at = what === 'view' ? i : skip(w, i + 1, 'view', 'if', 'not', 'exists');
      const name = last(at);
      return name ? [name] : undefined;
    }
    if (
      what === 'type' ||
      what === 'domain' ||
      what === 'function' ||
      what === 'procedure' ||
      what === 'sequence'
    ) {
      const name = last(i);
      return name ? [name] : undefined;
    }
    if (what === 'schema') {
      const name = last(i);
      return name && w.length === i + 1 ? [name] : undefined;
    }
    if (what === 'trigger' || (what === 'constraint' && w[i] === 'trigger')) {
      const on = w.indexOf('on', i);
      const table = on < 0 ? undefined : last(on + 1);
      const from = w.indexOf('from', i);
      const other = from < 0 ? undefined : last(from + 1);
      return table ? [table, ...(other ? [other] : [])] : undefined;
    }
    return undefined;
  }
  if (first === 'alter' && w[1] === 'table') {
    const name = nameAt(w, skip(w, 2, 'if', 'exists', 'only'));
    if (!name || w.includes('rename') || (w.includes('set') && w.includes('schema'))) return undefined;
    return [name.parts.at(-1) as string, ...mentioned(name.end)];
  }
  if (first === 'comment' && w[1] === 'on') {
    let i = 2;
    const kind = w[i] === 'materialized' ? `materialized ${w[++i]}` : w[i];
    const name = nameAt(w, i + 1);
    if (!name) return undefined;
    if (kind === 'column') return name.parts.length > 1 ? [name.parts.at(-2) as string] : undefined;
    return ['table', 'view', 'materialized view', 'type', 'domain', 'schema', 'function'].includes(kind ?? '')
      ? [name.parts.at(-1) as string]
      : undefined;
  }
  return undefined;
}

/** Whether `word` stands outside all parentheses in `w`. */
function depthZero(w: string[], word: string): boolean {
  let depth = 0;
  for (const t of w) {
    if (t === '(') depth++;
    else if (t === ')') depth--;
    else if (t === word && depth === 0) return true;
  }
  return false;
}

/**
 * The names (lower case, unqualified) of the schema objects a step's SQL may change, when every
 * statement in it names what it changes (creating or altering a table, creating an index, view,
 * type, domain, function, trigger, sequence or schema; a comment on one), with the tables it names
 * besides (a foreign key's, a parent's). Undefined for anything else (data, DO blocks, a function
 * called, CREATE TABLE AS, a drop or rename, an ALTER SEQUENCE, text it cannot read for certain):
 * what such a step touches is known only once it ran. Steps whose names differ cannot change each
 * other's objects, so their catalog reads can wait for the last of them; the walk checks afterwards
 * that no root was two steps' (see `CatalogTracker.splitTake`). A scanner, not the parser: this runs
 * on every up step of a walk, and the parser's memory does not shrink.
 */
export function reachOf(text: string): Set<string> | undefined {
  const statements = bareStatements(text);
  if (!statements) return undefined;
  const names = new Set<string>();
  for (const statement of statements) {
    // A statement after a comment is known only here: one that names nothing is not tokenized.
    if (!knownHead(statement, 0)) return undefined;
    const words = tokens(statement);
    const reach = words && reachOfStatement(words);
    if (!reach) return undefined;
    for (const name of reach) names.add(name);
  }
  return names;
}
