import { type RenderOptions, renderFindingLine, renderHeader, renderMarkdown } from './markdown.js';
import type { Report, Result } from './report.js';

/** GitHub refuses comment bodies longer than this many characters. */
export const CommentLimit = 65_536;

const MarkerPattern =
  /<!-- pg-migrate-verify set="([^"]*)"(?: major="(\d*)")? digest="([0-9a-f]*)" result="(\w+)" -->/;

/**
 * What the hidden marker in our comment says: which set, which Postgres major was asked for (a
 * version matrix has one comment per major), which content, which verdict.
 */
export interface Marker {
  set: string;
  /** The requested `postgres-version`; undefined when the run did not ask for one. */
  major?: number;
  digest: string;
  result: Result;
}

export function markerOf(marker: Marker): string {
  return `<!-- pg-migrate-verify set="${encodeURIComponent(marker.set)}"${marker.major ? ` major="${marker.major}"` : ''} digest="${marker.digest}" result="${marker.result}" -->`;
}

export function parseMarker(body: string | undefined | null): Marker | undefined {
  const m = MarkerPattern.exec(body ?? '');
  if (!m) return undefined;
  return {
    set: decodeURIComponent(m[1] ?? ''),
    ...(m[2] ? { major: Number(m[2]) } : {}),
    digest: m[3] ?? '',
    result: (m[4] ?? 'error') as Result,
  };
}

/** True when a comment's marker is the one for this set and requested major. */
export function sameComment(marker: Marker | undefined, set: string, major: number | undefined): boolean {
  return !!marker && marker.set === set && marker.major === major;
}

/** The report of one migration set: what its own comment shows. */
export function reportForSet(report: Report, set: string): Report {
  const accepted = report.accepted?.filter((f) => f.set === set);
  return {
    ...report,
    sets: report.sets.filter((s) => s.name === set),
    findings: report.findings.filter((f) => f.set === set),
    ...(accepted ? { accepted } : {}),
  };
}

/**
 * The report without what changes from run to run when nothing else does (durations), so that an
 * unchanged result renders to the same text and its comment is left alone.
 */
export function stableReport(report: Report): Report {
  return {
    ...report,
    timings: {},
    sets: report.sets.map((s) => ({
      ...s,
      migrations: s.migrations.map((m) => ({
        ...m,
        up: m.up && { ...m.up, ms: 0 },
        down: m.down && { ...m.down, ms: 0 },
        ...(m.assertions ? { assertions: m.assertions.map((a) => ({ ...a, ms: 0 })) } : {}),
      })),
    })),
  };
}

/**
 * The comment for one set: the report, a line when it passes after a failing run, the marker; cut
 * down to the verdict, the failing findings and a pointer to the job summary when too long.
 */
export function commentBody(
  report: Report,
  marker: Marker,
  options: RenderOptions & { previous?: Result; summaryUrl?: string; limit?: number } = {},
): string {
  const limit = options.limit ?? CommentLimit;
  const fixed =
    options.previous && options.previous !== 'passed' && report.result === 'passed'
      ? `> ✅ Fixed: the previous run of this check ${options.previous === 'failed' ? 'failed' : 'could not check'}; this one passes.\n\n`
      : '';
  const tail = `\n${markerOf(marker)}\n`;
  const full = `${fixed}${renderMarkdown(report, options)}${tail}`;
  if (full.length <= limit) return full;
  return shortened(report, fixed, tail, limit, options);
}

function shortened(
  report: Report,
  fixed: string,
  tail: string,
  limit: number,
  options: RenderOptions & { summaryUrl?: string },
): string {
  const head = renderHeader(report, options).join('\n').trimEnd();
  const pointer = `The full report is too long for a comment: ${options.summaryUrl ? `see the [job summary](${options.summaryUrl})` : 'see the job summary of this run'}.`;
  const errors = report.findings.filter((f) => f.severity === 'error');
  const lines: string[] = [];
  let used = fixed.length + head.length + pointer.length + tail.length + 100;
  for (const f of errors) {
    const text = renderFindingLine(f, options);
    if (used + text.length + 1 > limit) break;
    lines.push(text);
    used += text.length + 1;
  }
  const left = errors.length - lines.length;
  const more = left > 0 ? `\n\n…and ${left} more failing finding${left === 1 ? '' : 's'}.` : '';
  const list = lines.length ? `\n\n### Failing findings\n\n${lines.join('\n')}${more}` : more;
  return `${fixed}${head}\n\n${pointer}${list}\n${tail}`;
}
