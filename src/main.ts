import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as core from '@actions/core';
import { getOctokit } from '@actions/github';
import { commentBody, reportForSet, stableReport } from './core/comment.js';
import { CannotCheck, messageOf } from './core/errors.js';
import { plural } from './core/format.js';
import { renderMarkdown, renderSummary } from './core/markdown.js';
import { passwordOf, redactUrls } from './core/redact.js';
import { errorReport, type Report } from './core/report.js';
import { baseRefOfEvent } from './github/event.js';
import { upsertComment } from './github/sticky-comment.js';
import { startPostgres } from './postgres/index.js';
import { Inputs, type RawInputs, resolveSettings, type Settings } from './settings.js';
import { verify } from './verify.js';

/** Every input as given; empty inputs stay undefined so the config file and defaults apply. */
function readInputs(): RawInputs {
  const raw: RawInputs = {};
  for (const key of Object.values(Inputs)) {
    const value = core.getInput(key);
    if (value !== '') raw[key] = value;
  }
  // On a pull request, compare with its base branch unless told otherwise.
  if (raw[Inputs.BaseRef] === undefined) {
    const base = baseRefOfEvent(process.env);
    if (base) raw[Inputs.BaseRef] = base;
  }
  return raw;
}

/** The Action: read inputs, verify, publish. The one place that calls setFailed. */
export async function run(): Promise<void> {
  const raw = readInputs();
  for (const key of [Inputs.DatabaseUrl, Inputs.TargetDatabaseUrl]) {
    const password = passwordOf(raw[key] ?? '');
    if (password) core.setSecret(password);
  }
  const token = raw[Inputs.GithubToken];
  if (token) core.setSecret(token);
  const log = {
    info: (m: string) => core.info(redactUrls(m)),
    warn: (m: string) => core.warning(redactUrls(m)),
    debug: (m: string) => core.debug(redactUrls(m)),
  };

  let report: Report;
  let settings: Settings | undefined;
  try {
    // Paths (working-directory included) are relative to the checkout, as in every other action.
    settings = await resolveSettings(raw, process.env.GITHUB_WORKSPACE ?? process.cwd());
    log.debug(
      `settings: ${JSON.stringify({ ...settings, githubToken: settings.githubToken ? '***' : undefined, checks: [...settings.checks] })}`,
    );
    core.startGroup('Verify migrations');
    try {
      report = await verify(settings as Settings, {
        log,
        progress: (line) => core.info(line),
        startPostgres,
        now: () => performance.now(),
      });
    } finally {
      core.endGroup();
    }
  } catch (error) {
    if (!(error instanceof CannotCheck)) log.debug((error as Error)?.stack ?? String(error));
    report = errorReport(redactUrls(messageOf(error)));
  }
  const major = settings ? settings.postgresVersion : Number(raw[Inputs.PostgresVersion]) || undefined;
  await publish(report, {
    workingDirectory: settings?.workingDirectory,
    comment: settings?.comment ?? raw[Inputs.Comment]?.toLowerCase() !== 'false',
    token: raw[Inputs.GithubToken],
    major,
  });
}

/** Where the run is on GitHub: repository, pull request, head commit, links. */
interface RunContext {
  owner?: string;
  repo?: string;
  pr?: number;
  sha?: string;
  serverUrl: string;
  runUrl?: string;
  /** Absolute directory that report paths are relative to, and the checkout's root. */
  workingDirectory: string;
  workspace: string;
}

async function runContext(workingDirectory: string): Promise<RunContext> {
  const env = process.env;
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
  const serverUrl = env.GITHUB_SERVER_URL ?? 'https://github.com';
  let payload: { pull_request?: { number?: number; head?: { sha?: string } } } = {};
  if (env.GITHUB_EVENT_PATH) {
    try {
      payload = JSON.parse(await readFile(env.GITHUB_EVENT_PATH, 'utf8'));
    } catch {
      // No readable event: no pull request to comment on.
    }
  }
  const pr = payload.pull_request?.number;
  return {
    owner,
    repo,
    pr,
    sha: payload.pull_request?.head?.sha ?? env.GITHUB_SHA,
    serverUrl,
    runUrl:
      owner && repo && env.GITHUB_RUN_ID
        ? `${serverUrl}/${owner}/${repo}/actions/runs/${env.GITHUB_RUN_ID}`
        : undefined,
    workingDirectory,
    workspace: env.GITHUB_WORKSPACE ?? process.cwd(),
  };
}

/** A report path (relative to the working directory) as a path in the repository. */
function repoPath(ctx: RunContext, file: string): string {
  return path.relative(ctx.workspace, path.resolve(ctx.workingDirectory, file)).split(path.sep).join('/');
}

/** At most this many annotations: GitHub shows few per step, and a huge history must not flood the UI. */
const MaxAnnotations = 50;

function annotate(report: Report, ctx: RunContext): void {
  const located = report.findings.filter((f) => f.file);
  for (const f of located.slice(0, MaxAnnotations)) {
    const props = {
      title: `pg-migrate-verify ${f.check}${f.migration ? `: ${f.migration}` : ''}`,
      file: repoPath(ctx, f.file as string),
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

async function comment(report: Report, ctx: RunContext, token: string, major?: number): Promise<void> {
  if (!ctx.pr || !ctx.owner || !ctx.repo) {
    core.info('Not a pull request: no comment (the job summary has the report).');
    return;
  }
  const pr = { owner: ctx.owner, repo: ctx.repo, number: ctx.pr };
  const fileUrl = (file: string, line?: number) =>
    `${ctx.serverUrl}/${ctx.owner}/${ctx.repo}/blob/${ctx.sha}/${repoPath(ctx, file)}${line ? `#L${line}` : ''}`;
  const options = { fileUrl, summaryUrl: ctx.runUrl, major };
  const octokit = getOctokit(token);
  // One comment per migration set; a run that could not check at all has one for the whole run.
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
          ? `Could not comment on pull request #${ctx.pr}: the token may not write to it (${messageOf(error)}). Give the job \`permissions: pull-requests: write\`; pull requests from forks get a read-only token, so their report is in the job summary only. Set comment: false to stop trying.`
          : `Could not comment on pull request #${ctx.pr}: ${messageOf(error)}. The report is in the job summary.`,
      );
      return;
    }
  }
}

async function publish(
  report: Report,
  options: { workingDirectory?: string; comment: boolean; token?: string; major?: number },
): Promise<void> {
  core.info(renderSummary(report));
  const ctx = await runContext(options.workingDirectory ?? process.env.GITHUB_WORKSPACE ?? process.cwd());
  const markdown = renderMarkdown(report, {
    major: options.major,
    ...(ctx.owner && ctx.sha
      ? {
          fileUrl: (file: string, line?: number) =>
            `${ctx.serverUrl}/${ctx.owner}/${ctx.repo}/blob/${ctx.sha}/${repoPath(ctx, file)}${line ? `#L${line}` : ''}`,
        }
      : {}),
  });
  const dir = process.env.RUNNER_TEMP ?? os.tmpdir();
  const file = path.join(dir, 'pg-migrate-verify', 'report.json');
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
    core.setOutput('report', file);
  } catch (error) {
    core.warning(`Could not write the JSON report to ${file}: ${messageOf(error)}`);
  }
  if (process.env.GITHUB_STEP_SUMMARY) {
    try {
      await core.summary.addRaw(markdown).write();
    } catch (error) {
      core.warning(`Could not write the job summary: ${messageOf(error)}`);
    }
  }
  annotate(report, ctx);
  if (options.comment && options.token) await comment(report, ctx, options.token, options.major);
  const failing = report.findings.filter((f) => f.severity === 'error').length;
  core.setOutput('result', report.result);
  core.setOutput('findings', String(report.findings.length));
  core.setOutput('migrations', String(report.sets.reduce((n, s) => n + s.migrations.length, 0)));
  if (report.result === 'error') core.setFailed(`Could not check: ${report.error ?? 'unknown error'}`);
  else if (report.result === 'failed') {
    core.setFailed(
      `${plural(report.findings.length, 'finding')} (${plural(failing, 'error')}); see the job summary.`,
    );
  }
}
