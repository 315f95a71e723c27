import type { NewFinding } from './findings.js';

/**
 * One migration as its history sees it: what the migration tool records when it runs it, the
 * order it would run it in, and the text production ran.
 */
export interface HistoryEntry {
  /** Migration id, e.g. `0003_add_email`. */
  id: string;
  /** What the tool records in production once it has run (golang-migrate, Flyway, dbmate: the version). */
  key: string;
  /** Version segments (`1.2` as `[1, 2]`); the intended order. */
  version: readonly bigint[];
  /** File or folder name, for tools that run migrations in name order. */
  name: string;
  /** What such a tool sorts by when it is not the name (diesel: the version as text, dashes removed). */
  order?: string;
  /** In a graph (alembic): the keys of the migrations it builds on. */
  parents?: string[];
  /** The up file, relative to the working directory. */
  file: string;
  /** Line in `file` where the up text starts. */
  line: number;
  /** The up text, as production ran it. */
  source: string;
  /** Re-run whenever it changes (Flyway `R__`): edits are expected and it has no place in the order. */
  repeatable?: boolean;
}

/** How one migration tool orders and records a history, and what it does when that goes wrong. */
export interface OrderRules {
  /** The tool, for messages: `golang-migrate`. */
  tool: string;
  /** The order the tool runs pending migrations in; `graph`: each names its parents (alembic). */
  runsBy: 'version' | 'name' | 'graph';
  /** How a `name` tool sorts, for messages (default `file-name order`). */
  nameOrder?: string;
  /** True when a new name for a recorded key breaks production (Flyway validates descriptions). */
  namesMatter: boolean;
  /** What production does with a new migration that sorts before one it already ran. */
  outOfOrder: string;
  /** What production does with an edited migration it already ran. */
  edited: string;
  /** What production does when a migration it ran is gone from the history. */
  deleted: string;
}

/** Numeric, segment by segment; trailing zero segments do not count (Flyway: 1.0 = 1). */
export function compareVersions(a: readonly bigint[], b: readonly bigint[]): number {
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a[i] ?? 0n;
    const y = b[i] ?? 0n;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** A digit prefix that reads as a date and time (`20250817`, `20250817120000`, ...), years 1900-2099. */
const DateLike = /^(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d*$/;

/**
 * Versions from the digit prefixes of a folder's names, with timestamps compared at one precision:
 * `20250817` is 2025-08-17 00:00:00 and so sorts after `20250809051256`. Date-like prefixes are
 * padded on the right to the widest of them (at least 14 digits, seconds); others count as numbers.
 */
export function timestampVersions(prefixes: readonly (string | undefined)[]): (bigint | undefined)[] {
  const width = Math.max(14, ...prefixes.filter((p) => p && DateLike.test(p)).map((p) => p?.length ?? 0));
  return prefixes.map((p) => {
    if (!p) return undefined;
    return BigInt(DateLike.test(p) ? p.padEnd(width, '0') : p);
  });
}

/** `1.2.0` -> `1.2`: the version as a key, trailing zero segments dropped. */
export function versionKey(version: readonly bigint[]): string {
  const segments = [...version];
  while (segments.length > 1 && segments[segments.length - 1] === 0n) segments.pop();
  return segments.join('.');
}

/** Byte order, as Go's sort.Strings and most hand-written runners sort names (not the locale's). */
const byName = (a: HistoryEntry, b: HistoryEntry) => {
  const x = a.order ?? a.name;
  const y = b.order ?? b.name;
  return x < y ? -1 : x > y ? 1 : 0;
};
const byVersion = (a: HistoryEntry, b: HistoryEntry) =>
  compareVersions(a.version, b.version) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The order the tool runs the entries in. */
function runOrder(rules: OrderRules) {
  return rules.runsBy === 'name' ? byName : byVersion;
}

/**
 * Text as production ran it, for comparing two versions of one file: line endings, trailing
 * whitespace, a byte-order mark and trailing blank lines do not count (a CRLF checkout is not an edit).
 */
export function normalizedLines(text: string): string[] {
  const lines = text
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\r|\n/)
    .map((l) => l.replace(/[ \t\f\v]+$/, ''));
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** True when two texts are the same migration once normalised. */
export function sameText(a: string, b: string): boolean {
  return normalizedLines(a).join('\n') === normalizedLines(b).join('\n');
}

/** 0-based index of the first line that differs after normalising, or -1. */
function firstDifferentLine(a: string, b: string): number {
  const x = normalizedLines(a);
  const y = normalizedLines(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** `a`, `a and b`, `a, b and c`. */
const listing = (items: string[]) =>
  items.length < 2 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;

const listed = (entries: HistoryEntry[], max = 6) =>
  entries.length <= max
    ? entries.map((e) => `\`${e.id}\``).join(', ')
    : `${entries
        .slice(0, max)
        .map((e) => `\`${e.id}\``)
        .join(', ')} and ${entries.length - max} more`;

/**
 * Problems a history has on its own: two migrations with one key, and a tool that runs migrations in
 * name order where names sort otherwise than versions (`20250817_x` after `20250817120000_y`).
 */
export function historyFindings(entries: readonly HistoryEntry[], rules: OrderRules): NewFinding[] {
  const findings: NewFinding[] = [];
  const ordered = entries.filter((e) => !e.repeatable);
  const byKey = new Map<string, HistoryEntry[]>();
  for (const e of [...ordered].sort(byVersion)) byKey.set(e.key, [...(byKey.get(e.key) ?? []), e]);
  for (const same of byKey.values()) {
    for (const e of same.slice(1)) {
      const first = same[0] as HistoryEntry;
      findings.push({
        check: 'ordering',
        severity: 'error',
        migration: e.id,
        file: e.file,
        message: `'${first.file}' and '${e.file}' have the same version (${e.key}), so their order is undefined: ${rules.tool} refuses to run the history or runs only one of them. Give one of them a new, higher version.`,
      });
    }
  }
  if (rules.runsBy === 'name') {
    // Tools that record names run migrations of one version in name order: say so, once per version.
    const byVersionKey = new Map<string, HistoryEntry[]>();
    for (const e of [...ordered].sort(byName)) {
      const v = versionKey(e.version);
      byVersionKey.set(v, [...(byVersionKey.get(v) ?? []), e]);
    }
    for (const [v, same] of byVersionKey) {
      if (same.length < 2 || new Set(same.map((e) => e.key)).size < same.length) continue;
      const last = same[same.length - 1] as HistoryEntry;
      findings.push({
        check: 'ordering',
        severity: 'warning',
        migration: last.id,
        file: last.file,
        message: `${listing(same.map((e) => `'${e.name}'`))} have the same version (${v}), so ${rules.tool} runs them in ${rules.nameOrder ?? 'file-name order'}: ${same.map((e) => `\`${e.id}\``).join(' before ')}. If one of them needs another to run first, give it an earlier version; if the order does not matter, accept this warning.`,
      });
    }
    const versionOrder = [...ordered].sort(byVersion);
    const nameOrder = [...ordered].sort(byName);
    const first = versionOrder.findIndex((e, i) => nameOrder[i] !== e);
    if (first >= 0) {
      let last = versionOrder.length - 1;
      while (last > first && versionOrder[last] === nameOrder[last]) last--;
      const a = nameOrder[first] as HistoryEntry;
      const b = versionOrder[first] as HistoryEntry;
      findings.push({
        check: 'ordering',
        severity: 'error',
        migration: a.id,
        file: a.file,
        message: `${rules.tool} runs migrations in ${rules.nameOrder ?? 'file-name order'}, which puts '${a.name}' before '${b.name}', but their versions say the opposite (${versionKey(b.version)} < ${versionKey(a.version)}). A database built by ${rules.tool} runs them in another order than the versions (and this check) say. Give the versions the same width, e.g. pad the shorter ones with zeros, so both orders agree.`,
        detail: [
          'version order:',
          ...versionOrder.slice(first, last + 1).map((e) => `  ${e.name}`),
          `${rules.tool} (${rules.nameOrder ?? 'file-name order'}):`,
          ...nameOrder.slice(first, last + 1).map((e) => `  ${e.name}`),
        ].join('\n'),
      });
    }
  }
  return findings;
}

/** What a branch does to the history its base branch has. */
export interface HistoryComparison {
  findings: NewFinding[];
  /** Entries of the head that the base does not have (by key), in the head's order. */
  added: HistoryEntry[];
  /** Keys present on both sides whose text differs. */
  edited: string[];
  /** Keys of the base that the head no longer has. */
  removed: string[];
}

/** The two histories side by side: base entries by key, and each one's counterpart on the branch. */
interface Pairing {
  baseByKey: Map<string, HistoryEntry>;
  headByKey: Map<string, HistoryEntry>;
  added: HistoryEntry[];
  removed: HistoryEntry[];
  rules: OrderRules;
  baseName: string;
}

/**
 * Compares a branch's history (`head`) with its base branch's: everything added must sort after
 * everything on the base, and what the base has must stay as it is (not edited, renamed or deleted).
 */
export function compareHistories(
  base: readonly HistoryEntry[],
  head: readonly HistoryEntry[],
  rules: OrderRules,
  baseName: string,
): HistoryComparison {
  const baseByKey = new Map(base.filter((e) => !e.repeatable).map((e) => [e.key, e]));
  // Each base migration's counterpart: the head entry with its key, the one with its id first
  // (two head entries with one key are a duplicate, reported on its own).
  const headByKey = new Map<string, HistoryEntry>();
  for (const e of head) {
    if (e.repeatable) continue;
    const held = headByKey.get(e.key);
    if (!held || (held.id !== baseByKey.get(e.key)?.id && e.id === baseByKey.get(e.key)?.id))
      headByKey.set(e.key, e);
  }
  const matched = new Set(headByKey.values());
  const pairing: Pairing = {
    baseByKey,
    headByKey,
    added: head.filter((e) => !e.repeatable && !(baseByKey.has(e.key) && matched.has(e))),
    removed: [...baseByKey.values()].filter((e) => !headByKey.has(e.key)),
    rules,
    baseName,
  };
  const changed = changedOnBranch(pairing);
  const gone = goneFromBranch(pairing);
  return {
    findings: [...changed.findings, ...gone.findings, ...outOfOrder(pairing, gone.renamedTo)],
    added: pairing.added,
    edited: changed.edited,
    removed: pairing.removed.map((e) => e.key),
  };
}

/** Migrations on both sides: edited text, and (where the tool checks names) new names. */
function changedOnBranch(p: Pairing): { findings: NewFinding[]; edited: string[] } {
  const findings: NewFinding[] = [];
  const edited: string[] = [];
  for (const [key, was] of p.baseByKey) {
    const now = p.headByKey.get(key);
    if (!now) continue;
    if (!sameText(was.source, now.source)) {
      edited.push(key);
      const at = firstDifferentLine(was.source, now.source);
      findings.push({
        check: 'ordering',
        severity: 'error',
        migration: now.id,
        file: now.file,
        line: now.line + Math.max(at, 0),
        message: `\`${now.id}\` is already on ${p.baseName}, and this branch edits it${at >= 0 ? ` (first change at line ${now.line + at})` : ''}. ${p.rules.edited} Put the change in a new migration instead, and leave this one as it was.`,
        detail: editDetail(was, now, at),
      });
    }
    if (p.rules.namesMatter && was.id !== now.id) {
      findings.push({
        check: 'ordering',
        severity: 'error',
        migration: now.id,
        file: now.file,
        message: `\`${was.id}\` is already on ${p.baseName}, and this branch renames it to \`${now.id}\`. ${p.rules.tool} checks the name of every migration it ran, so production refuses to migrate. Keep the old name.`,
      });
    }
  }
  return { findings, edited };
}

/** Base migrations the branch no longer has: renamed (the same text under a new version) or deleted. */
function goneFromBranch(p: Pairing): { findings: NewFinding[]; renamedTo: Set<HistoryEntry> } {
  const findings: NewFinding[] = [];
  const renamedTo = new Set<HistoryEntry>();
  for (const gone of p.removed) {
    const successor = p.added.find((e) => !renamedTo.has(e) && sameText(e.source, gone.source));
    if (successor) {
      renamedTo.add(successor);
      findings.push({
        check: 'ordering',
        severity: 'error',
        migration: successor.id,
        file: successor.file,
        message: `\`${gone.id}\` is already on ${p.baseName}, and this branch renames it to \`${successor.id}\` (version ${gone.key} becomes ${successor.key}). Production recorded version ${gone.key} as applied, so it sees \`${successor.id}\` as new and runs the same text a second time, which fails or duplicates what it made. Keep the old name and version.`,
      });
    } else {
      findings.push({
        check: 'ordering',
        severity: 'error',
        migration: gone.id,
        file: gone.file,
        message: `\`${gone.id}\` is on ${p.baseName} but not on this branch: deleted here, or added to ${p.baseName} after this branch forked. ${p.rules.deleted} Restore it; if it was added to ${p.baseName} later, merge ${p.baseName} into this branch.`,
      });
    }
  }
  return { findings, renamedTo };
}

/** New migrations that sort before the newest one production ran (renames are reported as such). */
function outOfOrder(p: Pairing, renamedTo: Set<HistoryEntry>): NewFinding[] {
  const order = runOrder(p.rules);
  // In a graph, a new revision names its parent: a second head is the graph check's business.
  const newestOnBase = p.rules.runsBy === 'graph' ? undefined : [...p.baseByKey.values()].sort(order).at(-1);
  if (!newestOnBase) return [];
  return p.added
    .filter((e) => !renamedTo.has(e) && order(e, newestOnBase) < 0)
    .map((e) => {
      const passed = [...p.baseByKey.values()].filter((b) => order(e, b) < 0).sort(order);
      return {
        check: 'ordering' as const,
        severity: 'error' as const,
        migration: e.id,
        file: e.file,
        message: `\`${e.id}\` is new on this branch but sorts before ${listed(passed)}, already on ${p.baseName} and run by production. ${p.rules.outOfOrder} Give it a ${p.rules.runsBy === 'name' ? 'name' : 'version'} that sorts after \`${newestOnBase.id}\`.`,
      };
    });
}

function editDetail(was: HistoryEntry, now: HistoryEntry, at: number): string | undefined {
  if (at < 0) return undefined;
  const before = normalizedLines(was.source);
  const after = normalizedLines(now.source);
  const show = (lines: string[], sign: string) => lines.slice(at, at + 5).map((l) => `${sign} ${l}`);
  return [
    `first difference at line ${now.line + at} of ${now.file}:`,
    ...show(before, '-'),
    ...show(after, '+'),
  ].join('\n');
}
