import { readFileSync } from 'node:fs';

/** Where the run is on GitHub, read once from GITHUB_* and the event file. */
export interface GitHubRun {
  owner?: string;
  repo?: string;
  /** The pull request's number, on pull_request events. */
  pr?: number;
  /** The commit links point at: the pull request's head, else the run's commit. */
  sha?: string;
  /** The base branch to compare with, on pull_request and merge_group events. */
  baseRef?: string;
  serverUrl: string;
  runUrl?: string;
  /** The checkout's root. */
  workspace: string;
}

interface Payload {
  pull_request?: { number?: number; head?: { sha?: string } };
  merge_group?: { base_ref?: string };
}

/** The run's context from the environment; the event file is read here and nowhere else. */
export function readGitHubRun(env: NodeJS.ProcessEnv): GitHubRun {
  let payload: Payload = {};
  if (env.GITHUB_EVENT_PATH) {
    try {
      payload = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as Payload;
    } catch {
      // No readable event: no pull request to comment on, no base to compare with.
    }
  }
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
  const serverUrl = env.GITHUB_SERVER_URL ?? 'https://github.com';
  return {
    owner,
    repo,
    pr: payload.pull_request?.number,
    sha: payload.pull_request?.head?.sha ?? env.GITHUB_SHA,
    baseRef: baseRefOf(env, payload),
    serverUrl,
    runUrl:
      owner && repo && env.GITHUB_RUN_ID
        ? `${serverUrl}/${owner}/${repo}/actions/runs/${env.GITHUB_RUN_ID}`
        : undefined,
    workspace: env.GITHUB_WORKSPACE ?? process.cwd(),
  };
}

/**
 * The base branch of the run's pull request: `GITHUB_BASE_REF` on pull_request and
 * pull_request_target events, the queue's base branch on merge_group events; else undefined.
 */
export function baseRefOfEvent(env: NodeJS.ProcessEnv): string | undefined {
  return readGitHubRun(env).baseRef;
}

function baseRefOf(env: NodeJS.ProcessEnv, payload: Payload): string | undefined {
  if (env.GITHUB_BASE_REF) return env.GITHUB_BASE_REF;
  const ref = env.GITHUB_EVENT_NAME === 'merge_group' ? payload.merge_group?.base_ref : undefined;
  return ref ? ref.replace(/^refs\/heads\//, '') : undefined;
}
