import type { getOctokit } from '@actions/github';
import { parseMarker, sameComment } from '../core/comment.js';
import type { Result } from '../core/report.js';

type Octokit = ReturnType<typeof getOctokit>;

export interface PullRequest {
  owner: string;
  repo: string;
  number: number;
}

/** Who the token is: comments by anyone else are never edited. */
async function identity(octokit: Octokit): Promise<string> {
  try {
    const { data } = await octokit.rest.users.getAuthenticated();
    return data.login;
  } catch {
    // The Actions token (an app installation) may not read /user; it writes as this bot.
    return 'github-actions[bot]';
  }
}

/**
 * Creates or updates the one comment for a set (and requested major) on the pull request: found again by its hidden
 * marker among all the PR's comments (every page), only among the token's own comments, and left
 * alone when its content digest has not changed. `render` gets the verdict of the previous run.
 */
export async function upsertComment(
  octokit: Octokit,
  pr: PullRequest,
  key: { set: string; major?: number },
  render: (previous?: Result) => { body: string; digest: string },
): Promise<'created' | 'updated' | 'unchanged'> {
  const me = await identity(octokit);
  const comments = await octokit.paginate(octokit.rest.issues.listComments, {
    owner: pr.owner,
    repo: pr.repo,
    issue_number: pr.number,
    per_page: 100,
  });
  // Each job of a version matrix has its own comment, so no job overwrites another's verdict.
  const mine = comments.find(
    (c) => c.user?.login === me && sameComment(parseMarker(c.body), key.set, key.major),
  );
  const previous = parseMarker(mine?.body);
  const { body, digest } = render(previous?.result);
  if (!mine) {
    await octokit.rest.issues.createComment({
      owner: pr.owner,
      repo: pr.repo,
      issue_number: pr.number,
      body,
    });
    return 'created';
  }
  if (previous?.digest === digest) return 'unchanged';
  await octokit.rest.issues.updateComment({ owner: pr.owner, repo: pr.repo, comment_id: mine.id, body });
  return 'updated';
}
