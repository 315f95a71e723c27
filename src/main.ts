import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as core from '@actions/core';
import { CannotCheck, messageOf } from './core/errors.js';
import { plural } from './core/format.js';
import { renderMarkdown, renderSummary } from './core/markdown.js';
import { passwordOf, redactUrls } from './core/redact.js';
import { errorReport, type Report } from './core/report.js';
import { baseRefOfEvent } from './github/event.js';
import { startPostgres } from './postgres/index.js';
import { Inputs, type RawInputs, resolveSettings } from './settings.js';
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
  try {
    // Paths (working-directory included) are relative to the checkout, as in every other action.
    const settings = await resolveSettings(raw, process.env.GITHUB_WORKSPACE ?? process.cwd());
    log.debug(
      `settings: ${JSON.stringify({ ...settings, githubToken: settings.githubToken ? '***' : undefined, checks: [...settings.checks] })}`,
    );
    core.startGroup('Verify migrations');
    try {
      report = await verify(settings, {
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
  await publish(report);
}

async function publish(report: Report): Promise<void> {
  core.info(renderSummary(report));
  const markdown = renderMarkdown(report);
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
