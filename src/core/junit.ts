import type { CheckId, Finding } from './findings.js';
import type { MigrationReport, Report, SetReport } from './report.js';

/** The checks that run once per migration: a test case each for every migration. */
const PerMigration: readonly CheckId[] = ['apply', 'reversibility', 'assertions', 'locks'];

interface Case {
  classname: string;
  name: string;
  /** Seconds. */
  time?: number;
  failures: Finding[];
  warnings: Finding[];
  skipped?: string;
  error?: string;
}

/**
 * The report as JUnit XML, for CI systems that read test results (GitLab, Jenkins, CircleCI,
 * Azure): a test suite per migration set, a test case per migration and check (`classname` the
 * check, `name` the migration) and one per set-wide check; a failing finding is a `<failure>`
 * with its file:line, a warning is told in the case's `<system-out>`, a check that did not run
 * for a migration is `<skipped>`. A run that could not check is one suite with an `<error>`.
 */
export function renderJunit(report: Report): string {
  const suites =
    report.result === 'error'
      ? [
          suite('pg-migrate-verify', [
            {
              classname: 'pg-migrate-verify',
              name: 'could not check',
              failures: [],
              warnings: [],
              error: report.error ?? 'could not check',
            },
          ]),
        ]
      : report.sets.map((set) => suite(set.name, casesOf(set, report.findings)));
  const count = (f: (c: Case) => boolean) => suites.reduce((n, s) => n + s.cases.filter(f).length, 0);
  const time = seconds((report.timings.total ?? 0) / 1000);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="pg-migrate-verify" tests="${count(() => true)}" failures="${count((c) => c.failures.length > 0)}" errors="${count((c) => !!c.error)}" time="${time}">`,
    ...suites.map((s) => s.xml),
    '</testsuites>',
    '',
  ].join('\n');
}

function casesOf(set: SetReport, all: readonly Finding[]): Case[] {
  const findings = all.filter((f) => f.set === set.name);
  const ran = new Set(set.checks ?? PerMigration);
  const placed = new Set<Finding>();
  const take = (pick: (f: Finding) => boolean) => {
    const mine = findings.filter((f) => !placed.has(f) && pick(f));
    for (const f of mine) placed.add(f);
    return mine;
  };
  const cases: Case[] = [];
  for (const m of set.migrations) {
    for (const check of PerMigration) {
      if (!ran.has(check)) continue;
      if (check === 'assertions' && !m.assertions?.length) continue;
      const mine = take((f) => f.check === check && f.migration === m.id);
      cases.push({
        classname: check,
        name: m.id,
        ...timeOf(m, check),
        failures: mine.filter((f) => f.severity === 'error'),
        warnings: mine.filter((f) => f.severity === 'warning'),
        ...skippedOf(m, check, mine),
      });
    }
  }
  // Set-wide checks, and findings about migrations that have no row (a base branch's, production's).
  const wide = [...new Set<CheckId>([...(set.checks ?? []), ...findings.map((f) => f.check)])].filter(
    (c) => !PerMigration.includes(c) || findings.some((f) => !placed.has(f) && f.check === c),
  );
  for (const check of wide) {
    const mine = take((f) => f.check === check);
    cases.push({
      classname: check,
      name: check,
      failures: mine.filter((f) => f.severity === 'error'),
      warnings: mine.filter((f) => f.severity === 'warning'),
    });
  }
  return cases;
}

function timeOf(m: MigrationReport, check: CheckId): { time?: number } {
  if (check === 'apply' && m.up) return { time: m.up.ms / 1000 };
  if (check === 'reversibility' && m.down) return { time: m.down.ms / 1000 };
  return {};
}

/** Why a migration's check did not run, when it did not (and found nothing). */
function skippedOf(m: MigrationReport, check: CheckId, found: Finding[]): { skipped?: string } {
  if (found.length) return {};
  if (!m.up) return { skipped: 'not run: a migration before it did not apply' };
  if (check === 'reversibility' && m.reversible === 'no-down') return { skipped: 'no down step' };
  if (check === 'reversibility' && m.reversible === 'skipped') return { skipped: 'not checked' };
  return {};
}

function suite(name: string, cases: Case[]): { xml: string; cases: Case[] } {
  const time = cases.reduce((t, c) => t + (c.time ?? 0), 0);
  const head = `  <testsuite name="${attr(name)}" tests="${cases.length}" failures="${cases.filter((c) => c.failures.length).length}" errors="${cases.filter((c) => c.error).length}" skipped="${cases.filter((c) => c.skipped).length}" time="${seconds(time)}">`;
  return { xml: [head, ...cases.map(caseXml), '  </testsuite>'].join('\n'), cases };
}

function caseXml(c: Case): string {
  const open = `    <testcase classname="${attr(c.classname)}" name="${attr(c.name)}"${c.time !== undefined ? ` time="${seconds(c.time)}"` : ''}`;
  const body: string[] = [];
  if (c.error)
    body.push(
      `      <error message="${attr(firstLine(c.error))}" type="could-not-check">${text(c.error)}</error>`,
    );
  if (c.failures.length)
    body.push(
      `      <failure message="${attr(firstLine(c.failures[0]?.message ?? ''))}" type="${attr(c.classname)}">${text(c.failures.map(findingText).join('\n\n'))}</failure>`,
    );
  if (c.skipped) body.push(`      <skipped message="${attr(c.skipped)}"/>`);
  if (c.warnings.length)
    body.push(
      `      <system-out>${text(c.warnings.map((w) => `warning: ${findingText(w)}`).join('\n\n'))}</system-out>`,
    );
  return body.length ? `${open}>\n${body.join('\n')}\n    </testcase>` : `${open}/>`;
}

/** `file:line: message`, as a reader of a CI's test page wants it. */
function findingText(f: Finding): string {
  const where = f.file ? `${f.file}${f.line ? `:${f.line}` : ''}: ` : '';
  return `${where}${f.message}`;
}

const firstLine = (s: string) => (s.split('\n')[0] ?? '').slice(0, 500);

/** Seconds as the Surefire time pattern wants them: digits and a point, never an exponent. */
const seconds = (s: number) => (Number.isFinite(s) && s > 0 ? s.toFixed(3) : '0');

/** XML 1.0 cannot hold most control characters, even escaped. */
const clean = (s: string) => s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD');

function text(s: string): string {
  return clean(s).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

function attr(s: string): string {
  return text(s)
    .replaceAll('"', '&quot;')
    .replaceAll('\n', '&#10;')
    .replaceAll('\r', '&#13;')
    .replaceAll('\t', '&#9;');
}
