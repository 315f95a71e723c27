import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as core from '@actions/core';
import { CannotCheck, messageOf } from './core/errors.js';
import { plural } from './core/format.js';
import { renderJunit } from './core/junit.js';
import { passwordOf, redactUrls } from './core/redact.js';
import { errorReport, type Report } from './core/report.js';
import { type GitHubRun, readGitHubRun } from './github/event.js';
import { actionProgress } from './github/progress.js';
import { publish } from './github/publish.js';
import { startPostgres } from './postgres/index.js';
import { Inputs, type RawInputs, resolveSettings, type Settings } from './settings.js';
import { verify } from './verify.js';

/** The Action: read inputs, verify, publish. The one place that calls setFailed. */
export async function run(): Promise<void> {
  const github = readGitHubRun(process.env);
  const raw = readInputs(github);
  const log = {
    info: (m: string) => core.info(redactUrls(m)),
    warn: (m: string) => core.warning(redactUrls(m)),
    debug: (m: string) => core.debug(redactUrls(m)),
  };
  let report: Report;
  let settings: Settings | undefined;
  const progress = actionProgress();
  try {
    // Paths (working-directory included) are relative to the checkout, as in every other action.
    settings = await resolveSettings(raw, github.workspace, { pullRequest: github.baseRef !== undefined });
    log.debug(
      `settings: ${JSON.stringify({ ...settings, githubToken: settings.githubToken ? '***' : undefined, checks: [...settings.checks] })}`,
    );
    report = await verify(settings, {
      log,
      emit: progress.emit,
      startPostgres,
      now: () => performance.now(),
    });
  } catch (error) {
    if (!(error instanceof CannotCheck)) log.debug((error as Error)?.stack ?? String(error));
    report = errorReport(redactUrls(messageOf(error)));
  } finally {
    progress.end();
  }
  await publish(report, github, {
    workingDirectory: settings?.workingDirectory ?? github.workspace,
    comment: settings?.comment ?? raw[Inputs.Comment]?.toLowerCase() !== 'false',
    token: raw[Inputs.GithubToken],
    major: settings ? settings.postgresVersion : Number(raw[Inputs.PostgresVersion]) || undefined,
  });
  const junit = raw[Inputs.Junit];
  if (junit) await writeJunit(report, path.resolve(github.workspace, junit));
  if (report.result === 'error') core.setFailed(`Could not check: ${report.error ?? 'unknown error'}`);
  else if (report.result === 'failed') {
    const failing = report.findings.filter((f) => f.severity === 'error').length;
    core.setFailed(
      `${plural(report.findings.length, 'finding')} (${plural(failing, 'error')}); see the job summary.`,
    );
  }
}

/**
 * Every input as given (empty inputs stay undefined, so the config file and defaults apply), with
 * the secrets among them masked in the log. On a pull request, the base ref is its base branch.
 */
function readInputs(github: GitHubRun): RawInputs {
  const raw: RawInputs = {};
  for (const key of Object.values(Inputs)) {
    const value = core.getInput(key);
    if (value !== '') raw[key] = value;
  }
  if (raw[Inputs.BaseRef] === undefined && github.baseRef) raw[Inputs.BaseRef] = github.baseRef;
  for (const key of [Inputs.DatabaseUrl, Inputs.TargetDatabaseUrl]) {
    const password = passwordOf(raw[key] ?? '');
    if (password) core.setSecret(password);
  }
  const token = raw[Inputs.GithubToken];
  if (token) core.setSecret(token);
  return raw;
}

/** The `junit` input: the report as JUnit XML at that path (a warning when it cannot be written). */
async function writeJunit(report: Report, file: string): Promise<void> {
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, renderJunit(report));
    core.info(`JUnit report: ${file}`);
  } catch (error) {
    core.warning(
      `Could not write the JUnit report to ${file}: ${messageOf(error)}. Check the 'junit' input.`,
    );
  }
}
