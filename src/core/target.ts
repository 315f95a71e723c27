import type { NewFinding } from './findings.js';
import { compareVersions, type HistoryEntry, type OrderRules, versionKey } from './ordering.js';

/**
 * The deploy gate's view of a live database's history: what its migration tool recorded, read
 * the way that tool reads it, set against the repository's history. Pure: rows in, findings out.
 */

/** The tools whose history tables the gate reads, by how they record a run. */
export type HistoryTool =
  | 'golang-migrate'
  | 'dbmate'
  | 'flyway'
  | 'diesel'
  | 'sequelize'
  | 'umzug'
  | 'alembic'
  | 'command';

/** How a format's tool records what it ran on a database. */
export interface Tracking {
  tool: HistoryTool;
  /** `schema.table` where it records it (the format's default; `history-table` overrides it). */
  table: string;
  /** What the tool does in production with a recorded migration this repository does not have. */
  unknown: string;
}

/** One row of the target's history table, as the tool wrote it. */
export interface AppliedRow {
  /** What the tool records: a version, a file name, a revision id. */
  key: string;
  /** Flyway: stored checksum, success, type (`SQL`, `UNDO_SQL`, `BASELINE`, ...), script. */
  checksum?: number | null;
  success?: boolean;
  type?: string;
  script?: string;
  /** Flyway: a repeatable migration (no version; re-run whenever its checksum changes). */
  repeatable?: boolean;
}

/** The target's history as read from its table. */
export interface TargetHistory {
  tracking: Tracking;
  /** False when the table does not exist: nothing was ever applied there. */
  exists: boolean;
  rows: AppliedRow[];
  /** golang-migrate: the one recorded version is marked dirty (a run failed part-way). */
  dirty?: boolean;
}

/** The repository's history against the target's. */
export interface TargetState {
  /** Repository migrations the target has applied, in the repository's order. */
  applied: HistoryEntry[];
  /** Repository migrations the target has not applied: what a deploy runs, in its order. */
  pending: HistoryEntry[];
  /** Recorded on the target, unknown to the repository. */
  unknown: string[];
  findings: NewFinding[];
}

/** Flyway's checksum of a migration's text: CRC-32 of each line's UTF-8 bytes, without line breaks or BOM, signed. */
export function flywayChecksum(text: string): number {
  let crc = 0xffffffff;
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  // Java's readLine() yields no empty line after a final line break.
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    for (const byte of Buffer.from(line, 'utf8'))
      crc = (crc >>> 8) ^ (Crc32Table[(crc ^ byte) & 0xff] as number);
  }
  return (crc ^ 0xffffffff) | 0;
}

const Crc32Table = (() => {
  const table: number[] = [];
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table.push(c >>> 0);
  }
  return table;
})();

/** A recorded key as the repository writes it: versions compared as numbers (`0001` = `1`, `1.0` = `1`). */
function normalKey(tool: HistoryTool, key: string): string {
  if (tool === 'golang-migrate' || tool === 'dbmate' || tool === 'flyway') {
    const segments = key.split(/[._]/);
    if (segments.every((s) => /^\d+$/.test(s))) return versionKey(segments.map((s) => BigInt(s)));
  }
  return key;
}

/**
 * Sets the target's history against the repository's `entries`: what is applied, what is pending,
 * what is unknown, and the findings a deploy would trip over (`target` is how messages name it).
 */
export function targetState(
  history: TargetHistory,
  entries: readonly HistoryEntry[],
  rules: OrderRules,
  target: string,
): TargetState {
  const { tool, table } = history.tracking;
  const findings: NewFinding[] = [];
  const byKey = new Map<string, HistoryEntry>();
  for (const e of entries) {
    byKey.set(normalKey(tool, e.key), e);
    // umzug records file names with or without the extension, as its resolver names them.
    if (tool === 'umzug') byKey.set(e.name.replace(/\.[^.]+$/, ''), e);
  }
  const recorded = appliedKeys(history, entries, byKey);
  for (const e of entries.filter((x) => x.repeatable && repeatableCurrent(history, x)))
    recorded.applied.add(e);
  const applied = entries.filter((e) => recorded.applied.has(e));
  const pending = entries.filter((e) => !recorded.applied.has(e));
  const unknown = recorded.unknown;
  for (const key of unknown)
    findings.push({
      check: 'target',
      severity: 'error',
      message: `${target}: ${table} records \`${key}\` as applied, but this repository has no such migration (its file was deleted or renamed, or it was deployed from another branch). ${history.tracking.unknown} Restore the migration in this branch, or find out where it came from before deploying.`,
    });
  findings.push(...failedRuns(history, target), ...editedSinceApplied(history, byKey, target));
  findings.push(...outOfOrderPending(applied, pending, rules, target));
  return { applied, pending, unknown, findings };
}

/** Which repository entries the recorded rows mean are applied, and the recorded keys it does not know. */
function appliedKeys(
  history: TargetHistory,
  entries: readonly HistoryEntry[],
  byKey: Map<string, HistoryEntry>,
): { applied: Set<HistoryEntry>; unknown: string[] } {
  const { tool } = history.tracking;
  const applied = new Set<HistoryEntry>();
  const unknown: string[] = [];
  if (tool === 'golang-migrate') {
    // One row: the newest version it ran; everything up to it counts as applied.
    const row = history.rows[0];
    if (!row) return { applied, unknown };
    const current = row.key.split('.').map((s) => BigInt(s));
    for (const e of entries) if (compareVersions(e.version, current) <= 0) applied.add(e);
    if (!byKey.has(normalKey(tool, row.key))) unknown.push(row.key);
    return { applied, unknown };
  }
  if (tool === 'alembic') {
    // The heads it recorded, and every revision they build on.
    const parents = new Map(entries.map((e) => [e.key, e.parents ?? []]));
    const visit = (key: string) => {
      const e = byKey.get(key);
      if (!e || applied.has(e)) return;
      applied.add(e);
      for (const p of parents.get(key) ?? []) visit(p);
    };
    for (const row of history.rows) {
      if (byKey.has(row.key)) visit(row.key);
      else unknown.push(row.key);
    }
    return { applied, unknown };
  }
  for (const row of flywayEffective(history)) {
    const e = byKey.get(normalKey(tool, row.key));
    if (e) applied.add(e);
    else unknown.push(row.key);
  }
  return { applied, unknown };
}

/** A Flyway repeatable migration the target ran with its current text: Flyway does not run it again. */
function repeatableCurrent(history: TargetHistory, entry: HistoryEntry): boolean {
  const last = history.rows
    .filter((r) => r.repeatable && r.success !== false && r.script === entry.name)
    .at(-1);
  return last?.checksum === flywayChecksum(entry.source);
}

/** Rows that stand for an applied migration: for Flyway the successful versioned ones not undone since. */
function flywayEffective(history: TargetHistory): AppliedRow[] {
  if (history.tracking.tool !== 'flyway') return history.rows;
  const live = new Map<string, AppliedRow>();
  for (const row of history.rows) {
    if (row.repeatable) continue;
    if (row.success === false || row.type === 'BASELINE' || row.type === 'SCHEMA' || row.type === 'DELETE')
      continue;
    if (row.type === 'UNDO_SQL') live.delete(row.key);
    else live.set(row.key, row);
  }
  return [...live.values()];
}

/** A previous deploy that failed part-way: the tool refuses to run until someone repairs it. */
function failedRuns(history: TargetHistory, target: string): NewFinding[] {
  const { tool, table } = history.tracking;
  if (tool === 'golang-migrate' && history.dirty) {
    const version = history.rows[0]?.key ?? '?';
    return [
      {
        check: 'target',
        severity: 'error',
        message: `${target}: ${table} marks version ${version} as dirty: a previous deploy failed part-way through it. golang-migrate refuses to run ("Dirty database version ${version}. Fix and force version."), so this deploy would stop before its first migration. Repair what version ${version} left half-done, then run \`migrate force\` with the version the database really is at.`,
      },
    ];
  }
  if (tool !== 'flyway') return [];
  return history.rows
    .filter((row) => row.success === false)
    .map((row) => ({
      check: 'target' as const,
      severity: 'error' as const,
      message: `${target}: ${table} records a failed run of ${row.script ? `\`${row.script}\`` : `version ${row.key}`}: a previous deploy failed part-way. Flyway's validate refuses to migrate ("Detected failed migration to version ${row.key}"), so this deploy would stop. Repair what it left half-done, then run \`flyway repair\`.`,
    }));
}

/** Flyway stores each migration's checksum: an applied file edited since is refused by validate. */
function editedSinceApplied(
  history: TargetHistory,
  byKey: Map<string, HistoryEntry>,
  target: string,
): NewFinding[] {
  const { tool, table } = history.tracking;
  if (tool !== 'flyway') return [];
  const found: NewFinding[] = [];
  for (const row of flywayEffective(history)) {
    const e = byKey.get(normalKey(tool, row.key));
    if (!e || e.repeatable || row.checksum === undefined || row.checksum === null) continue;
    const now = flywayChecksum(e.source);
    if (now === row.checksum) continue;
    found.push({
      check: 'target',
      severity: 'error',
      migration: e.id,
      file: e.file,
      message: `${target}: \`${e.id}\` was applied with checksum ${row.checksum} (${table}), but its file now has checksum ${now}: it was edited after it was deployed. Flyway's validate refuses to migrate ("Migration checksum mismatch for migration version ${row.key}"), and the target keeps what the old text made. Restore the applied text and put the change in a new migration; if the edit changes nothing (a comment), run \`flyway repair\`.`,
    });
  }
  return found;
}

/** Pending migrations that sort before the newest applied one: the tool skips, refuses or reorders them. */
function outOfOrderPending(
  applied: HistoryEntry[],
  pending: HistoryEntry[],
  rules: OrderRules,
  target: string,
): NewFinding[] {
  if (rules.runsBy === 'graph' || !applied.length) return [];
  const order = (a: HistoryEntry, b: HistoryEntry) =>
    rules.runsBy === 'name'
      ? (a.order ?? a.name) < (b.order ?? b.name)
        ? -1
        : (a.order ?? a.name) > (b.order ?? b.name)
          ? 1
          : 0
      : compareVersions(a.version, b.version);
  const newest = [...applied].sort(order).at(-1) as HistoryEntry;
  return pending
    .filter((e) => order(e, newest) < 0)
    .map((e) => ({
      check: 'target' as const,
      severity: 'error' as const,
      migration: e.id,
      file: e.file,
      message: `${target}: \`${e.id}\` is not applied there yet, but sorts before \`${newest.id}\`, which is. ${rules.outOfOrder} Give it a ${rules.runsBy === 'name' ? 'name' : 'version'} that sorts after \`${newest.id}\`.`,
    }));
}
