import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as core from '@actions/core';
import { getOctokit } from '@actions/github';
import { commentBody, reportForSet, stableReport } from '../core/comment.js';
import { messageOf } from '../core/errors.js';
import { type RenderOptions, renderMarkdown, renderSummary } from '../core/markdown.js';
import type { Report } from '../core/report.js';
import type { GitHubRun } from './event.js';
import { upsertComment } from './sticky-comment.js';

/** How to publish one run's report. */
export interface PublishOptions {
  /** Absolute directory that report paths are relative to. */
  workingDirectory: string;
  /** Post or update the pull request comment. */
  comment: boolean;
  token?: string;
  /** The Postgres major the run asked for: a version matrix has one comment per major. */
  major?: number;
}

/**
 * Everything the Action tells GitHub about a run: the log summary, the JSON report and the
 * outputs, the job summary, annotations, the pull request comment. It never fails the step:
 * the caller decides that from the report.
 */
export async function publish(report: Report, run: GitHubRun, options: PublishOptions): Promise<void> {
  core.info(renderSummary(report));
  const fileUrl = fileUrlOf(run, options.workingDirectory);
  await writeJsonReport(report);
  await writeJobSummary(renderMarkdown(report, { major: options.major, ...(fileUrl ? { fileUrl } : {}) }));
  annotate(report, run, options.workingDirectory);
  if (options.comment && options.token)
    await postComments(report, run, options.token, { major: options.major, fileUrl });
  core.setOutput('result', report.result);
  core.setOutput('findings', String(report.findings.length));
  core.setOutput('migrations', String(report.sets.reduce((n, s) => n + s.migrations.length, 0)));
  // The deploy gate: how many migrations a deploy would run (every set's target together).
  if (report.sets.some((s) => s.target))
    core.setOutput('pending', String(report.sets.reduce((n, s) => n + (s.target?.pending.length ?? 0), 0)));
}

/** Links to files (and lines) at the commit the run checked, when the run knows its repository. */
function fileUrlOf(run: GitHubRun, workingDirectory: string): RenderOptions['fileUrl'] {
  if (!run.owner || !run.sha) return undefined;
  return (file, line) =>
    `${run.serverUrl}/${run.owner}/${run.repo}/blob/${run.sha}/${repoPath(run, workingDirectory, file)}${line ? `#L${line}` : ''}`;
}

/** A report path (relative to the working directory) as a path in the repository. */
function repoPath(run: GitHubRun, workingDirectory: string, file: string): string {
  return path.relative(run.workspace, path.resolve(workingDirectory, file)).split(path.sep).join('/');
}

async function writeJsonReport(report: Report): Promise<void> {
  const file = path.join(process.env.RUNNER_TEMP ?? os.tmpdir(), 'pg-migrate-verify', 'report.json');
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
    core.setOutput('report', file);
  } catch (error) {
    core.warning(`Could not write the JSON report to ${file}: ${messageOf(error)}`);
  }
}

async function writeJobSummary(markdown: string): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  try {
    await core.summary.addRaw(markdown).write();
  } catch (error) {
    core.warning(`Could not write the job summary: ${messageOf(error)}`);
  }
}

/** At most this many annotations: GitHub shows few per step, and a huge history must not flood the UI. */
const MaxAnnotations = 50;

function annotate(report: Report, run: GitHubRun, workingDirectory: string): void {
  const located = report.findings.filter((f) => f.file);
  for (const f of located.slice(0, MaxAnnotations)) {
    const props = {
      title: `pg-migrate-verify ${f.check}${f.migration ? `: ${f.migration}` : ''}`,
      file: repoPath(run, workingDirectory, f.file as string),
      ...(f.line ? { startLine: f.line } : {}),
    };
    if (f.severity === 'error') core.error(f.message, props);
    else core.warning(f.message, props);
  }
  if (located.length > MaxAnnotations)
    core.notice(
      `${located.length - MaxAnnotations} more findings are not annotated; every finding is in the job summary.`,
    );
}

/** One comment per migration set (and requested major); a run that could not check at all has one for the whole run. */
async function postComments(
  report: Report,
  run: GitHubRun,
  token: string,
  { major, fileUrl }: { major?: number; fileUrl?: RenderOptions['fileUrl'] },
): Promise<void> {
  if (!run.pr || !run.owner || !run.repo) {
    core.info('Not a pull request: no comment (the job summary has the report).');
    return;
  }
  const pr = { owner: run.owner, repo: run.repo, number: run.pr };
  const options = { ...(fileUrl ? { fileUrl } : {}), summaryUrl: run.runUrl, major };
  const octokit = getOctokit(token);
  const names = report.sets.length ? report.sets.map((s) => s.name) : [''];
  for (const name of names) {
    const part = name ? reportForSet(report, name) : report;
    const digest = createHash('sha256')
      .update(renderMarkdown(stableReport(part), options))
      .digest('hex')
      .slice(0, 16);
    try {
      const done = await upsertComment(octokit, pr, { set: name, major }, (previous) => ({
        digest,
        body: commentBody(
          part,
          { set: name, ...(major ? { major } : {}), digest, result: part.result },
          { ...options, previous },
        ),
      }));
      core.info(
        `Pull request comment${name ? ` for ${name}` : ''}${major ? ` on PostgreSQL ${major}` : ''}: ${done}.`,
      );
    } catch (error) {
      const status = (error as { status?: number }).status;
      core.warning(
        status === 403 || status === 404
          ? `Could not comment on pull request #${run.pr}: the token may not write to it (${messageOf(error)}). Give the job \`permissions: pull-requests: write\`; pull requests from forks get a read-only token, so their report is in the job summary only. Set comment: false to stop trying.`
          : `Could not comment on pull request #${run.pr}: ${messageOf(error)}. The report is in the job summary.`,
      );
      return;
    }
  }
}
