import type { NewFinding, Severity } from './findings.js';
import type { SchemaDifference, SchemaObject } from './schema.js';

/**
 * What a migration step does to tables that already hold data: the locks it takes, for how long,
 * the rewrites and full scans it causes. Observed by the database (event triggers in the step's own
 * session read its pg_locks), so it works the same for every format. Pure: observations in, findings out.
 */

/** The rules of the `locks` check, as named in reports, `accept:`, `lock-rules` and `allow` comments. */
export const LockRules = [
  'rewrite',
  'validated-constraint',
  'set-not-null',
  'blocking-index',
  'lock-timeout',
] as const;
export type LockRule = (typeof LockRules)[number];

/**
 * The rules a migration's own file allows: `-- pg-migrate-verify: allow rewrite, lock-timeout` in
 * SQL, the same after `//` or `#` in a module or a Python file.
 */
export function allowedRules(text: string): string[] {
  const rules: string[] = [];
  for (const m of text.matchAll(
    /^[ \t]*(?:--|\/\/|#)[ \t]*pg-migrate-verify:[ \t]*allow[ \t]+([a-z-][a-z-, \t]*)$/gim,
  ))
    rules.push(
      ...(m[1] ?? '')
        .split(/[\s,]+/)
        .filter(Boolean)
        .map((r) => r.toLowerCase()),
    );
  return rules;
}

/** One lock mode the step held on one table, as seen at the end of its DDL statements. */
export interface LockObservation {
  table: string;
  /** As pg_locks names it: `AccessExclusiveLock`, `ShareLock`, ... */
  mode: string;
  /** The statements (command tags) that ran while it was held. */
  commands: string[];
  /** Milliseconds (server clock) when the first statement holding it started, and when the last ended. */
  started?: number;
  ended: number;
  /** lock_timeout was off when it was first seen. */
  untimed: boolean;
  /** How many DDL statements ended while it was held. */
  seen: number;
}

/** A table the step rewrote, and why (the table_rewrite event's reason bits). */
export interface RewriteObservation {
  table: string;
  reason: number;
}

/** One row the triggers logged: a lock held at the end of a DDL statement, or a rewrite. */
export interface LoggedLock {
  /** The relation as the snapshot names it, and unquoted (`schema.table`); null when not named. */
  table: string | null;
  raw: string | null;
  /** A pg_locks mode, or `rewrite`. */
  mode: string;
  /** The statement's command tag. */
  tag: string | null;
  /** Server clock, ms: the statement's start (with seed data only) and end. */
  started: number | null;
  at: number | null;
  /** lock_timeout in force at the end of the statement. */
  lockTimeout: string | null;
  /** A rewrite's reason bits. */
  reason: number | null;
}

/**
 * What the database saw during one step, from the rows the triggers logged: one observation per
 * table and lock mode, one per rewritten table; relations that are no user table, and the
 * migration tool's own history tables (`schema.table`), left out.
 */
export function stepTrace(rows: readonly LoggedLock[], historyTables: readonly string[]): StepTrace {
  const locks = new Map<string, LockObservation & { first: number }>();
  const rewrites = new Map<string, RewriteObservation>();
  for (const row of rows) {
    if (row.table === null || (row.raw !== null && historyTables.includes(row.raw))) continue;
    if (row.mode === 'rewrite') {
      const seen = rewrites.get(row.table);
      rewrites.set(row.table, { table: row.table, reason: (seen?.reason ?? 0) | (row.reason ?? 0) });
      continue;
    }
    const key = `${row.table}\u0000${row.mode}`;
    const at = row.at ?? 0;
    const lock = locks.get(key) ?? {
      table: row.table,
      mode: row.mode,
      commands: [],
      ended: at,
      untimed: false,
      seen: 0,
      first: Number.POSITIVE_INFINITY,
    };
    if (row.tag && !lock.commands.includes(row.tag)) lock.commands.push(row.tag);
    if (row.started !== null && (lock.started === undefined || row.started < lock.started))
      lock.started = row.started;
    lock.ended = Math.max(lock.ended, at);
    // Whether a lock_timeout was in force when the lock was first seen.
    if (at < lock.first) {
      lock.first = at;
      lock.untimed = row.lockTimeout === '0' || row.lockTimeout === '0ms';
    }
    lock.seen++;
    locks.set(key, lock);
  }
  return {
    locks: [...locks.values()]
      .map(({ first: _, ...lock }) => ({ ...lock, commands: lock.commands.sort() }))
      .sort((a, b) => byTable(a, b) || order(a.mode, b.mode)),
    rewrites: [...rewrites.values()].sort(byTable),
  };
}

const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byTable = (a: { table: string }, b: { table: string }) => order(a.table, b.table);

/** What the database saw during one step. */
export interface StepTrace {
  locks: LockObservation[];
  rewrites: RewriteObservation[];
}

/** A lock on a table as the report shows it. */
export interface ObservedLock {
  direction: 'up' | 'down';
  table: string;
  /** `ACCESS EXCLUSIVE`, `SHARE`, ... */
  mode: string;
  /** What other sessions cannot do while it is held. */
  blocks: 'reads and writes' | 'writes' | 'schema changes';
  /** From the first statement that took it to the last DDL statement of the step. */
  heldMs?: number;
  /** Set when the step rewrote the table, with why. */
  rewrite?: string;
}

const Modes: Record<string, { name: string; blocks: ObservedLock['blocks']; rank: number }> = {
  AccessExclusiveLock: { name: 'ACCESS EXCLUSIVE', blocks: 'reads and writes', rank: 8 },
  ExclusiveLock: { name: 'EXCLUSIVE', blocks: 'writes', rank: 7 },
  ShareRowExclusiveLock: { name: 'SHARE ROW EXCLUSIVE', blocks: 'writes', rank: 6 },
  ShareLock: { name: 'SHARE', blocks: 'writes', rank: 5 },
  ShareUpdateExclusiveLock: { name: 'SHARE UPDATE EXCLUSIVE', blocks: 'schema changes', rank: 4 },
};

/** The table_rewrite reasons (bits), in words. */
function rewriteReason(reason: number): string {
  const why: string[] = [];
  if (reason & 4) why.push('a column type change');
  if (reason & 2) why.push('a column default that is not a constant (every row gets its own value)');
  if (reason & 1) why.push('a persistence change (LOGGED / UNLOGGED)');
  if (reason & 8) why.push('an access method change');
  return why.join(' and ') || 'a table rewrite';
}

/** Everything the analysis of one step needs. */
export interface StepLocks {
  id: string;
  direction: 'up' | 'down';
  file?: string;
  trace: StepTrace;
  /** The step's schema differences (what it added, dropped and changed). */
  diffs: readonly SchemaDifference[];
  /** True for a table that existed before the migration (not created by it, in either direction). */
  existed(table: string): boolean;
  /** The table's constraints as they were before the step. */
  constraintsBefore(table: string): SchemaObject[];
  /** Severity per rule; `off` drops it. */
  severities: Partial<Record<LockRule, Severity | 'off'>>;
  /** Extra words for a table: its size on the target (deploy gate), how long the seed kept it locked. */
  context(table: string, lock?: LockObservation): string;
}

const held = (lock: LockObservation | undefined) =>
  lock && lock.started !== undefined ? Math.max(0, Math.round(lock.ended - lock.started)) : undefined;

/** The locks the step held on tables that existed before it, strongest first, for the report. */
export function observedLocks(step: StepLocks): ObservedLock[] {
  const out: ObservedLock[] = [];
  for (const lock of step.trace.locks) {
    const mode = Modes[lock.mode];
    if (!mode || !step.existed(lock.table)) continue;
    const rewrite = step.trace.rewrites.find((r) => r.table === lock.table);
    out.push({
      direction: step.direction,
      table: lock.table,
      mode: mode.name,
      blocks: mode.blocks,
      ...(held(lock) !== undefined ? { heldMs: held(lock) } : {}),
      ...(rewrite && lock.mode === 'AccessExclusiveLock' ? { rewrite: rewriteReason(rewrite.reason) } : {}),
    });
  }
  // One line per table: its strongest lock.
  const strongest = new Map<string, ObservedLock>();
  for (const o of out.sort((a, b) => rank(b) - rank(a)))
    if (!strongest.has(o.table)) strongest.set(o.table, o);
  return [...strongest.values()].sort(byTable);
}

const rank = (o: ObservedLock) => Object.values(Modes).find((m) => m.name === o.mode)?.rank ?? 0;

/** The findings of one step, by rule; a rule the config turns off is left out. */
export function lockFindings(step: StepLocks): (NewFinding & { rule: LockRule })[] {
  const found: (NewFinding & { rule: LockRule })[] = [];
  const file = (rule: LockRule, table: string, message: string) => {
    const severity = step.severities[rule] ?? 'warning';
    if (severity === 'off') return;
    found.push({
      check: 'locks',
      severity,
      rule,
      migration: step.id,
      ...(step.file ? { file: step.file } : {}),
      message: `\`${step.id}\` (${step.direction}) ${message}${step.context(table, lockOn(step, table, 'AccessExclusiveLock'))} Allow it with \`-- pg-migrate-verify: allow ${rule}\` (SQL) or an \`accept:\` entry, if the table is small or the team accepts the risk.`,
    });
  };
  for (const r of step.trace.rewrites) {
    if (!step.existed(r.table)) continue;
    const why = rewriteReason(r.reason);
    file(
      'rewrite',
      r.table,
      `rewrites every row of ${r.table} because of ${why}, holding ACCESS EXCLUSIVE: every read and write of the table waits until the rewrite and the rest of the step's transaction are done. ${r.reason & 4 ? 'Add a new column of the new type, backfill it in batches, then switch to it,' : 'Add the column without a default (or with a constant one, which needs no rewrite since PostgreSQL 11), then fill it in batches,'} so no step rewrites the table.`,
    );
  }
  for (const d of step.diffs) {
    const table = d.object.parent;
    if (!table || !step.existed(table)) continue;
    if (d.object.kind === 'constraint' && d.change === 'added') validatedConstraint(step, d, table, file);
    if (d.object.kind === 'index' && d.change === 'added' && writesBlocked(step, table))
      file(
        'blocking-index',
        table,
        `builds index ${d.object.name} on ${table} without CONCURRENTLY: writes to the table wait for the whole build (${modeName(strongest(step, table))}, held until the end of the step's transaction). Use CREATE INDEX CONCURRENTLY, in a step of its own outside a transaction${d.object.props.definition && String(d.object.props.definition).includes('UNIQUE') ? ' (for a unique constraint: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX)' : ''}.`,
      );
    if (
      d.object.kind === 'column' &&
      d.change === 'changed' &&
      becameNotNull(d) &&
      !provenNotNull(step, table, d)
    )
      file(
        'set-not-null',
        table,
        `sets ${d.object.name} NOT NULL, which scans every row of ${table} under ACCESS EXCLUSIVE (reads and writes wait) because no valid CHECK constraint proves it already. Add CHECK (${columnName(d)} IS NOT NULL) NOT VALID, VALIDATE it in a later step (reads and writes go on), then SET NOT NULL (no scan) and drop the CHECK.`,
      );
  }
  const untimed = step.trace.locks.filter(
    (l) => l.mode === 'AccessExclusiveLock' && l.untimed && step.existed(l.table),
  );
  if (untimed.length) {
    const tables = untimed.map((l) => l.table).join(', ');
    file(
      'lock-timeout',
      untimed[0]?.table ?? '',
      `takes ACCESS EXCLUSIVE on ${tables} with no lock_timeout in force: if a long query holds the table, this step waits in the lock queue, and every read and write of the table queues behind it until then, even a quick ALTER. Start the step with \`SET lock_timeout = '2s'\` (SET LOCAL inside its transaction) and retry the deploy when it times out.`,
    );
  }
  return found;
}

function validatedConstraint(
  step: StepLocks,
  d: SchemaDifference,
  table: string,
  file: (rule: LockRule, table: string, message: string) => void,
): void {
  const type = String(d.object.props.type ?? '');
  if ((type !== 'foreign key' && type !== 'check') || d.object.props.validated === false) return;
  const definition = String(d.object.props.definition ?? '');
  const referenced = /REFERENCES\s+([^\s(]+)/.exec(definition)?.[1];
  file(
    'validated-constraint',
    table,
    `adds ${type} constraint ${d.object.name.split('.').pop()} on ${table} as valid, so it checks every row of ${table} while holding ${modeName(strongest(step, table))}${referenced ? ` (and SHARE ROW EXCLUSIVE on ${referenced}, which blocks its writes)` : ''} until the end of the step's transaction. Add it with NOT VALID (no scan, a brief lock), then VALIDATE CONSTRAINT in a later step (SHARE UPDATE EXCLUSIVE: reads and writes go on).`,
  );
}

function lockOn(step: StepLocks, table: string, mode: string): LockObservation | undefined {
  return step.trace.locks.find((l) => l.table === table && l.mode === mode);
}

function strongest(step: StepLocks, table: string): string {
  const locks = step.trace.locks.filter((l) => l.table === table && Modes[l.mode]);
  return (
    locks.sort((a, b) => (Modes[b.mode]?.rank ?? 0) - (Modes[a.mode]?.rank ?? 0))[0]?.mode ??
    'AccessExclusiveLock'
  );
}

function modeName(mode: string): string {
  const m = Modes[mode];
  return m ? `${m.name}, which blocks ${m.blocks}` : mode;
}

/** The step held a lock on the table that blocks writes (SHARE or stronger): not a concurrent build. */
function writesBlocked(step: StepLocks, table: string): boolean {
  return step.trace.locks.some((l) => l.table === table && (Modes[l.mode]?.rank ?? 0) >= 5);
}

function becameNotNull(d: SchemaDifference): boolean {
  return d.props.some((p) => p.prop === 'notNull' && p.after === true && p.before !== true);
}

function columnName(d: SchemaDifference): string {
  return d.object.name.split('.').pop() ?? d.object.name;
}

/** A valid CHECK (col IS NOT NULL) existed before: PostgreSQL 12+ then sets NOT NULL without a scan. */
function provenNotNull(step: StepLocks, table: string, d: SchemaDifference): boolean {
  const column = columnName(d).replace(/^"|"$/g, '');
  return step.constraintsBefore(table).some((c) => {
    const definition = String(c.props.definition ?? '');
    return (
      c.props.type === 'check' &&
      c.props.validated !== false &&
      new RegExp(
        `^CHECK \\(\\(?"?${column.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"? IS NOT NULL\\)?\\)$`,
      ).test(definition)
    );
  });
}
