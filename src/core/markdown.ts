import { type AssertionRun, Sides, shouldPass } from './assertions.js';
import { renderErd, type SchemaPicture } from './erd.js';
import type { Finding } from './findings.js';
import { CheckIds } from './findings.js';
import { formatDuration, plural } from './format.js';
import type {
  AcceptedFinding,
  MigrationReport,
  Report,
  SetReport,
  StepResult,
  TargetReport,
} from './report.js';

/** Escapes text from the repository or the database so it cannot open HTML or break a table. */
export function escapeText(text: string): string {
  return (
    text
      .replaceAll('&', '&amp;')
      .replaceAll('<', '&lt;')
      .replaceAll('>', '&gt;')
      .replaceAll('|', '\\|')
      // A name from the repository must not notify anyone: @someone becomes @&#8203;someone.
      .replace(/@(?=[\w-])/g, '@&#8203;')
  );
}

/** Inline code that survives backticks in the value. */
export function inlineCode(text: string): string {
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text.replaceAll('|', '\\|')}${pad}${fence}`;
}

/** A fenced block that survives fences in the value. */
export function codeBlock(text: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`{3,}/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}\n${text}\n${fence}`;
}

const WhatToDo: Record<string, string> = {
  apply:
    'Fix the failing up step; nothing after it was applied. Where production and a fresh database end differently, undo the edit or renumber the migration the ordering findings name.',
  reversibility: 'Make each down step undo exactly what its up step does.',
  'rollback-all': 'Fix the down steps so that rolling everything back succeeds and leaves nothing behind.',
  assertions: 'Fix the migration or the assertion so that each holds on exactly its side.',
  ordering:
    'Give new migrations versions that sort after everything on the base branch, and leave migrations the base branch has exactly as they are: put changes in a new migration. A deliberate exception goes in the config file under `accept:` with its reason.',
  'drift-snapshot': 'Run with --update-snapshot and commit the snapshot file.',
  'drift-models': 'Add a migration for the model change, or change the models back.',
  locks:
    'Use the safe alternative each finding names (CONCURRENTLY; NOT VALID then VALIDATE; a new column and a backfill instead of a rewrite; a lock_timeout first), or allow the rule for that migration when the table is small (`-- pg-migrate-verify: allow <rule>` or an `accept:` entry).',
  target:
    "Do not deploy yet: repair what the target's history says (a failed or dirty run, a migration it has that this branch lacks), renumber a pending migration that sorts before applied ones, and bring the target's schema and the history back together (a migration for a hand-made change, or undo it).",
};

function step(result: StepResult | null): string {
  if (!result) return '–';
  return `${result.ok ? '' : '❌ '}${formatDuration(result.ms)}`;
}

function status(m: MigrationReport, failing: Set<string>, warned: Set<string>): string {
  if (!m.up) return '⏭️';
  if (!m.up.ok || m.down?.ok === false || failing.has(m.id)) return '❌';
  return warned.has(m.id) ? '⚠️' : '✅';
}

/** Where rendered file references point: e.g. the PR's head commit on GitHub. */
export interface RenderOptions {
  /** URL of a file (and line) in the repository; without it, files are plain code. */
  fileUrl?: (file: string, line?: number) => string;
  /** The Postgres major the run was asked for (a version matrix): named in the title. */
  major?: number;
}

function location(f: Finding, options: RenderOptions): string {
  if (!f.file) return '';
  const text = inlineCode(`${f.file}${f.line ? `:${f.line}` : ''}`);
  // Parentheses would end the link early.
  const url =
    options.fileUrl &&
    encodeURI(options.fileUrl(f.file, f.line)).replaceAll('(', '%28').replaceAll(')', '%29');
  return url ? `[${text}](${url})` : text;
}

/** Verdict and counts: the first lines of every rendering. */
export function renderHeader(report: Report, options: RenderOptions = {}): string[] {
  const out: string[] = [];
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.length - errors;
  const migrations = report.sets.reduce((n, s) => n + s.migrations.length, 0);
  const verdict =
    report.result === 'passed' ? '✅ passed' : report.result === 'failed' ? '❌ failed' : '⚠️ could not check';
  out.push(`## pg-migrate-verify${options.major ? ` on PostgreSQL ${options.major}` : ''}: ${verdict}`, '');
  const failingChecks = CheckIds.filter((c) =>
    report.findings.some((f) => f.check === c && f.severity === 'error'),
  );
  const facts = [
    `${plural(migrations, 'migration')} checked`,
    `${plural(errors, 'error')}, ${plural(warnings, 'warning')}`,
    failingChecks.length ? `failing: ${failingChecks.join(', ')}` : '',
    report.postgres ? `PostgreSQL ${report.postgres.version} (${report.postgres.provider})` : '',
    report.timings.total !== undefined ? formatDuration(report.timings.total) : '',
  ].filter(Boolean);
  out.push(facts.join(' · '), '');
  if (report.error) out.push(`**Could not check:** ${escapeText(report.error)}`, '');
  return out;
}

/** One finding as a list item: severity, file:line, message. */
export function renderFindingLine(f: Finding, options: RenderOptions = {}): string {
  const where = location(f, options);
  return `- ${f.severity === 'error' ? '❌' : '⚠️'} ${where ? `${where} ` : ''}${escapeText(f.message).replaceAll('\\|', '|')}`;
}

/** Renders the whole report as GitHub-flavoured Markdown: verdict and counts first, details collapsed. */
export function renderMarkdown(report: Report, options: RenderOptions = {}): string {
  const out: string[] = renderHeader(report, options);
  for (const set of report.sets) out.push(...setSection(report, set));
  if (report.findings.length) out.push(...findingsSection(report, options));
  if (report.accepted?.length) out.push(...acceptedSection(report.accepted, options));
  return `${out.join('\n').trimEnd()}\n`;
}

/** One migration set: its folder and format, the base it was compared with, a row per migration, notes. */
function setSection(report: Report, set: SetReport): string[] {
  const out: string[] = [];
  const migrationsWith = (severity: Finding['severity']) =>
    new Set(
      report.findings
        .filter((f) => f.set === set.name && f.severity === severity && f.migration)
        .map((f) => f.migration as string),
    );
  const failing = migrationsWith('error');
  const warned = migrationsWith('warning');
  out.push(`### ${escapeText(set.name)}`, '');
  out.push(
    `${inlineCode(set.dir)}: ${escapeText(set.format)}${set.formatReason ? `, ${escapeText(set.formatReason)}` : ''}`,
    '',
  );
  if (set.base) {
    const added = set.base.added;
    out.push(
      `Compared with ${inlineCode(set.base.ref)} at ${inlineCode(set.base.commit.slice(0, 7))} (${plural(set.base.migrations, 'migration')}): ${
        added.length
          ? `this branch adds ${added.map((id) => inlineCode(id)).join(', ')}`
          : 'this branch adds no migration'
      }.`,
      '',
    );
  }
  const scope = scopeText(set, inlineCode);
  if (scope) out.push(`Scope \`changed\`: ${scope}`, '');
  if (set.target) out.push(...targetSection(set.target, set.migrations));
  // The locks column only where the locks check observed something, so other reports read as before.
  const locks = set.migrations.some((m) => m.locks?.length);
  out.push(
    `| | Migration | Up | Down | Reversible | Changes |${locks ? ' Locks |' : ''}`,
    `|---|---|---|---|---|---|${locks ? '---|' : ''}`,
  );
  for (const m of set.migrations) {
    const changes = m.changes.length ? m.changes.map((c) => escapeText(c)).join('<br>') : '';
    out.push(
      `| ${status(m, failing, warned)} | ${inlineCode(m.id)} | ${step(m.up)} | ${step(m.down)} | ${m.reversible} | ${changes} |${locks ? ` ${lockCell(m)} |` : ''}`,
    );
  }
  out.push('');
  if (set.picture) out.push(...pictureSection(set.picture));
  out.push(...assertionTable(set.migrations));
  for (const note of set.notes) out.push(`> ${escapeText(note).replaceAll('\\|', '|')}`, '');
  return out;
}

/** The schema change as a Mermaid diagram (GitHub draws it), with what it leaves out past the cap. */
function pictureSection(picture: SchemaPicture): string[] {
  const counts = (['added', 'changed', 'dropped'] as const)
    .map((c) => [c, picture.tables.filter((t) => t.change === c).length] as const)
    .filter(([, n]) => n > 0)
    .map(([c, n]) => `${n} ${c}`);
  const more = picture.more ? `; ${plural(picture.more, 'more table')} not drawn` : '';
  return [
    '<details open>',
    `<summary>Schema change: ${plural(picture.tables.filter((t) => t.change !== 'context').length, 'table')} (${counts.join(', ')})${more}</summary>`,
    '',
    '```mermaid',
    renderErd(picture),
    '```',
    '',
    '</details>',
    '',
  ];
}

/** What `scope: changed` left out, when it left something out; `code` shows a name or a setting. */
function scopeText(set: SetReport, code: (text: string) => string = (t) => t): string | undefined {
  if (set.scope !== 'changed' || !set.unchecked || !set.base) return undefined;
  const checked = set.migrations.length;
  const first = set.migrations[0]?.id ?? '';
  return `the first ${plural(set.unchecked, 'migration')}, which this branch shares with ${code(set.base.ref)}, ${set.unchecked === 1 ? 'was' : 'were'} applied without per-migration checks; ${checked ? `${plural(checked, 'migration')} from ${code(first)} on ${checked === 1 ? 'was' : 'were'} checked` : 'this branch changes none'}. ${code('scope: all')} checks every migration (on main, nightly).`;
}

/** `ACCESS EXCLUSIVE public.accounts · rewrite`: the strongest lock per table and direction. */
function lockCell(m: MigrationReport): string {
  return (m.locks ?? [])
    .map(
      (l) =>
        `${l.direction === 'down' ? 'down: ' : ''}${l.mode} ${escapeText(l.table)}${l.rewrite ? ' · rewrite' : ''}`,
    )
    .join('<br>');
}

/** The deploy gate: what the target has applied, what a deploy would run there, and how big it is. */
function targetSection(target: TargetReport, migrations: MigrationReport[]): string[] {
  const out = [
    `#### Deploy gate: ${inlineCode(target.database)}`,
    '',
    `History table ${inlineCode(target.table)}: ${plural(target.applied.length, 'migration')} applied, ${target.pending.length} pending${target.unknown.length ? `, ${target.unknown.length} unknown to this repository (${target.unknown.map((k) => inlineCode(k)).join(', ')})` : ''}.`,
    '',
  ];
  if (!target.pending.length) {
    out.push('Nothing to deploy: the target has every migration of this branch.', '');
    return out;
  }
  out.push(
    "A deploy runs, in this order (rehearsed below on a copy of what the history gives at the target's version):",
    '',
  );
  for (const id of target.pending) {
    const live = migrations.find((m) => m.id === id)?.live ?? [];
    const sizes = live.map(
      (t) => `${inlineCode(t.table)} ~${formatCount(t.rows)} rows, ${formatBytes(t.bytes)}`,
    );
    out.push(`1. ${inlineCode(id)}${sizes.length ? `: touches ${sizes.join('; ')}` : ''}`);
  }
  out.push('');
  return out;
}

function formatCount(n: number): string {
  return n >= 1_000_000
    ? `${(n / 1_000_000).toFixed(1)}M`
    : n >= 1_000
      ? `${(n / 1_000).toFixed(1)}k`
      : String(n);
}

function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

/** Findings grouped by check, each with its details collapsed, and what to do for a failing check. */
function findingsSection(report: Report, options: RenderOptions): string[] {
  const out = ['### Findings', ''];
  for (const check of CheckIds) {
    const group = report.findings.filter((f) => f.check === check);
    if (!group.length) continue;
    out.push(`#### ${check}`, '');
    for (const f of group) {
      out.push(renderFindingLine(f, options));
      if (f.detail) {
        out.push(
          '',
          '  <details><summary>Details</summary>',
          '',
          indent(codeBlock(f.detail), '  '),
          '',
          '  </details>',
          '',
        );
      }
    }
    if (group.some((f) => f.severity === 'error')) {
      if (out.at(-1) !== '') out.push('');
      out.push(`**What to do:** ${WhatToDo[check]}`);
    }
    out.push('');
  }
  return out;
}

function acceptedSection(accepted: AcceptedFinding[], options: RenderOptions): string[] {
  const out = [`### Accepted (${accepted.length})`, ''];
  out.push('Findings the config file accepts on purpose; they do not fail the check.', '');
  for (const f of accepted) {
    const where = location(f, options);
    out.push(
      `- ${f.check} ${inlineCode(f.migration ?? '')}${where ? ` ${where}` : ''}: ${escapeText(f.reason)}`,
      `  <details><summary>Finding</summary>`,
      '',
      `  ${escapeText(f.message).replaceAll('\\|', '|')}`,
      '',
      '  </details>',
    );
  }
  out.push('');
  return out;
}

/** Which assertions ran on which side, pass or fail, and how long: collapsed under the migrations. */
function assertionTable(migrations: MigrationReport[]): string[] {
  const rows = migrations.flatMap((m) => {
    const files = [...new Set((m.assertions ?? []).map((r) => r.file))];
    return files.map((file) => ({
      id: m.id,
      file,
      runs: (m.assertions ?? []).filter((r) => r.file === file),
    }));
  });
  if (!rows.length) return [];
  const all = rows.flatMap((r) => r.runs);
  const good = all.filter((r) => r.passed === shouldPass(r.direction, r.side)).length;
  const cell = (run: AssertionRun | undefined) =>
    run
      ? `${run.passed === shouldPass(run.direction, run.side) ? '✅' : '❌'} ${run.timedOut ? 'timed out' : run.passed ? 'passes' : 'fails'}, ${formatDuration(run.ms)}`
      : '–';
  return [
    `<details><summary>Assertions: ${plural(all.length, 'run')}, ${good} as expected</summary>`,
    '',
    '| Migration | Assertion | Before | After | Rolled back |',
    '|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${inlineCode(r.id)} | ${inlineCode(r.file.split('/').at(-1) ?? r.file)} | ${Sides.map((side) => cell(r.runs.find((x) => x.side === side))).join(' | ')} |`,
    ),
    '',
    '</details>',
    '',
  ];
}

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => by + l)
    .join('\n');
}

/** The terminal summary printed after the per-migration lines. */
export function renderSummary(report: Report): string {
  const errors = report.findings.filter((f) => f.severity === 'error').length;
  const warnings = report.findings.length - errors;
  const migrations = report.sets.reduce((n, s) => n + s.migrations.length, 0);
  const lines: string[] = [];
  if (report.result === 'error') {
    lines.push(`pg-migrate-verify: could not check. ${report.error ?? ''}`.trimEnd());
  } else {
    const pg = report.postgres ? `, PostgreSQL ${report.postgres.version} (${report.postgres.provider})` : '';
    lines.push(
      `pg-migrate-verify: ${report.result.toUpperCase()}: ${plural(migrations, 'migration')}, ${plural(errors, 'error')}, ${plural(warnings, 'warning')}${pg}, ${formatDuration(report.timings.total ?? 0)}`,
    );
  }
  for (const set of report.sets) {
    if (set.base)
      lines.push(
        `  base  ${set.name}: ${set.base.ref} at ${set.base.commit.slice(0, 7)}, ${plural(set.base.migrations, 'migration')}; ${set.base.added.length ? `adds ${set.base.added.join(', ')}` : 'adds none'}`,
      );
    const scope = scopeText(set);
    if (scope) lines.push(`  scope  ${set.name}: changed: ${scope}`);
    if (set.target)
      lines.push(
        `  target  ${set.name}: ${set.target.database}: ${set.target.applied.length} applied, ${set.target.pending.length} pending${set.target.pending.length ? ` (${set.target.pending.join(', ')})` : ''}${set.target.unknown.length ? `, ${set.target.unknown.length} unknown (${set.target.unknown.join(', ')})` : ''}`,
      );
    for (const note of set.notes) lines.push(`  note  ${set.name}: ${note}`);
  }
  for (const f of report.accepted ?? []) {
    lines.push(`  accepted  ${f.check}  ${f.migration ?? ''}: ${f.reason}`);
  }
  for (const f of report.findings) {
    const where = f.file ? `${f.file}${f.line ? `:${f.line}` : ''}  ` : '';
    lines.push(`  ${f.severity === 'error' ? 'error' : 'warn '}  ${f.check}  ${where}${f.message}`);
    if (f.detail) lines.push(...f.detail.split('\n').map((l) => `        ${l}`));
  }
  return lines.join('\n');
}
