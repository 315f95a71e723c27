import { readFileSync } from 'node:fs';

/**
 * The base branch of the run's pull request: `GITHUB_BASE_REF` on pull_request and
 * pull_request_target events, the queue's base branch on merge_group events; else undefined.
 */
export function baseRefOfEvent(env: NodeJS.ProcessEnv): string | undefined {
  if (env.GITHUB_BASE_REF) return env.GITHUB_BASE_REF;
  if (env.GITHUB_EVENT_NAME === 'merge_group' && env.GITHUB_EVENT_PATH) {
    try {
      const payload = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, 'utf8')) as {
        merge_group?: { base_ref?: string };
      };
      const ref = payload.merge_group?.base_ref;
      if (ref) return ref.replace(/^refs\/heads\//, '');
    } catch {
      // No readable payload: no base to compare with.
    }
  }
  return undefined;
}
