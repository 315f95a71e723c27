import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CannotCheck, messageOf } from './core/errors.js';
import { Inputs } from './core/inputs.js';
import type { Logger } from './core/logger.js';
import { fastTempRoot, registerCleanup } from './lifecycle.js';

class GitFailed extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly code: number | null,
    /** What it wrote to stdout before it failed. */
    readonly stdout = '',
  ) {
    super(stderr.trim().split('\n').at(-1) || `git ${args[0]} exited with ${code}`);
  }
}

/** Runs git; resolves with stdout as bytes, rejects with GitFailed (or ENOENT when git is missing). */
function git(cwd: string, args: string[], input?: Buffer, timeoutMs = 120_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      // Never wait for a password prompt in CI.
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', LC_ALL: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new GitFailed(args, err, code, Buffer.concat(out).toString('utf8')));
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

const text = async (cwd: string, args: string[]) => (await git(cwd, args)).toString('utf8').trim();

/** The commit `ref` names, or undefined. */
async function commitOf(cwd: string, ref: string): Promise<string | undefined> {
  try {
    return (await text(cwd, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`])) || undefined;
  } catch {
    return undefined;
  }
}

/** The base branch's copy of a migrations folder, read from git. */
export interface BaseCheckout {
  /** The commit it was read from. */
  commit: string;
  /** The folder as it is on the base (may not exist when the branch adds it). */
  dir: string;
  /** The working directory's counterpart inside the copy, so reported paths read the same. */
  workingDirectory: string;
  /** False when the base has no such folder. */
  exists: boolean;
  /**
   * Set instead of a copy when every file of the folder on the base is, byte for byte, in the
   * working tree (the branch only adds files there): those files, relative to the working directory.
   */
  unchanged?: Set<string>;
}

/**
 * Finds `ref` (fetching it from `origin` when the checkout lacks it, e.g. a shallow clone) and copies
 * the folders `dirs` as they are on it into a temp dir. Returns one checkout per folder and a
 * function that removes the copy.
 */
export async function checkoutBase(
  ref: string,
  dirs: string[],
  workingDirectory: string,
  log: Logger,
  /** Folders whose migrations run through commands in the working directory, copied whole. */
  withRunner: string[] = [],
  /**
   * Folders whose base copy is not needed when the branch only adds files to them (see
   * `unchanged`); it may come later (git compares the folders meanwhile, e.g. while they load).
   */
  reusable: string[] | Promise<string[]> = [],
): Promise<{ commit: string; checkouts: BaseCheckout[]; remove: () => Promise<void> }> {
  const { top, commit: here } = await repositoryRoot(ref, dirs[0] ?? workingDirectory, workingDirectory);
  // A fetch waits for the folders to load: a run that stops at its input reaches no remote.
  const commit = here ?? (await resolveRef(top, ref, log, Promise.resolve(reusable)));
  const root = await mkdtemp(path.join(await fastTempRoot(), 'pgmv-base-'));
  const unregister = registerCleanup({
    sync: () => rmSync(root, { recursive: true, force: true }),
    async: () => rm(root, { recursive: true, force: true }),
  });
  const remove = async () => {
    await rm(root, { recursive: true, force: true });
    unregister();
  };
  const comparing: Promise<unknown>[] = [];
  try {
    const checkouts: BaseCheckout[] = [];
    const realWd = await realpath(workingDirectory).catch(() => workingDirectory);
    for (const dir of dirs) {
      const realDir = await realpath(dir).catch(() => path.resolve(dir));
      const rel = path.relative(top, realDir);
      if (rel.startsWith('..') || path.isAbsolute(rel))
        throw new CannotCheck(
          `'${path.relative(workingDirectory, dir)}' is outside the git repository at '${top}', so ${Inputs.BaseRef} '${ref}' cannot be read for it. Keep migrations inside the repository.`,
        );
      // A runner of its own (format: command) lives beside the migrations: copy the working directory too.
      const relWd = path.relative(top, realWd);
      const wholeWd = withRunner.includes(dir) && !relWd.startsWith('..') && !path.isAbsolute(relWd);
      const same = wholeWd ? undefined : sameInWorkingTree(top, commit, rel);
      same?.catch(() => {});
      // A folder that turns out not to be reusable still lets its comparison end: no git left running.
      if (same) comparing.push(same);
      const unchanged = same && (await reusable).includes(dir) ? await same : undefined;
      if (unchanged) {
        checkouts.push({
          commit,
          dir: path.join(root, rel),
          workingDirectory: path.join(root, relWd),
          exists: unchanged.length > 0,
          unchanged: new Set(unchanged.map((f) => path.relative(realWd, path.join(top, f)))),
        });
        continue;
      }
      await copyTree(top, commit, wholeWd ? relWd : rel, root);
      checkouts.push({
        commit,
        dir: path.join(root, rel),
        workingDirectory: path.join(root, relWd),
        exists: existsSync(path.join(root, rel)),
      });
    }
    await Promise.allSettled(comparing);
    return { commit, checkouts, remove };
  } catch (error) {
    await Promise.allSettled(comparing);
    await remove();
    throw error;
  }
}

/**
 * The top of the git repository that holds `dir` (real path), and the commit `ref` names where this
 * checkout has it under that name (one git process for both: each costs 15-50 ms to start from a
 * large process); a clear error without git or a repository.
 */
async function repositoryRoot(
  ref: string,
  dir: string,
  workingDirectory: string,
): Promise<{ top: string; commit?: string }> {
  const args = ['rev-parse', '--show-toplevel', '--verify', '--quiet', `${ref}^{commit}`];
  const lines = (out: string) => out.trim().split('\n');
  try {
    const [top, commit] = lines((await git(dir, args)).toString('utf8'));
    return { top: await realpath(top ?? ''), ...(commit ? { commit } : {}) };
  } catch (error) {
    // Exit 1: a repository, without that ref here (it may be origin's, or to fetch).
    if (error instanceof GitFailed && error.code === 1 && error.stdout.trim())
      return { top: await realpath(lines(error.stdout)[0] ?? '') };
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && !(error instanceof GitFailed)) {
      throw new CannotCheck(
        `Input '${Inputs.BaseRef}' is '${ref}', which needs git, and git is not on PATH. Install git, or leave ${Inputs.BaseRef} empty to skip the comparison with the base branch.`,
        { cause: error },
      );
    }
    throw new CannotCheck(
      `Input '${Inputs.BaseRef}' is '${ref}', but '${path.relative(workingDirectory, dir) || '.'}' is not inside a git repository (${messageOf(error)}). Run the check in a git checkout, or leave ${Inputs.BaseRef} empty.`,
      { cause: error },
    );
  }
}

/**
 * The commit `ref` names: here, as `origin/<ref>`, or fetched from origin (shallowly in a shallow
 * clone), once `before` settled well.
 */
async function resolveRef(top: string, ref: string, log: Logger, before?: Promise<unknown>): Promise<string> {
  const known = (await commitOf(top, ref)) ?? (await commitOf(top, `refs/remotes/origin/${ref}`));
  if (known) return known;
  await before;
  const shallow = (await text(top, ['rev-parse', '--is-shallow-repository']).catch(() => '')) === 'true';
  log.info(
    `${Inputs.BaseRef} '${ref}' is not in this checkout; fetching it from origin${shallow ? ' (shallow)' : ''}`,
  );
  let fetched: string | undefined;
  try {
    await git(top, ['fetch', '--no-tags', ...(shallow ? ['--depth=1'] : []), 'origin', ref]);
    fetched = await commitOf(top, 'FETCH_HEAD');
  } catch (error) {
    throw new CannotCheck(
      `Input '${Inputs.BaseRef}' is '${ref}', which is not a commit in this checkout, and 'git fetch origin ${ref}' failed: ${messageOf(error)}. Fetch the base branch first (actions/checkout with fetch-depth: 0), or set ${Inputs.BaseRef} to a branch, tag or commit that exists.`,
      { cause: error },
    );
  }
  if (!fetched)
    throw new CannotCheck(
      `Input '${Inputs.BaseRef}' is '${ref}', and 'git fetch origin ${ref}' brought no commit. Set ${Inputs.BaseRef} to a branch, tag or commit that exists.`,
    );
  return fetched;
}

/** The regular files under `rel` at `commit`, with their blob ids (paths relative to the top). */
async function filesAt(top: string, commit: string, rel: string): Promise<{ sha: string; file: string }[]> {
  const listing = await git(top, ['ls-tree', '-r', '-z', '--full-tree', commit, '--', rel || '.']);
  const blobs: { sha: string; file: string }[] = [];
  for (const entry of listing.toString('utf8').split('\0')) {
    const match = /^(\d+) blob ([0-9a-f]+)\t(.*)$/s.exec(entry);
    // Regular files only: symlinks and submodules have no migration text of their own.
    if (match && (match[1] === '100644' || match[1] === '100755'))
      blobs.push({ sha: match[2] as string, file: match[3] as string });
  }
  return blobs;
}

/**
 * The files under `rel` at `commit` (paths relative to the top) when the working tree has each of
 * them with the same content (git's own hash, after its filters, so a CRLF checkout of the same
 * text counts as the same); undefined when one is missing or differs.
 */
async function sameInWorkingTree(top: string, commit: string, rel: string): Promise<string[] | undefined> {
  // git's own comparison of the commit with the working tree first: it hashes only the files whose
  // stat data the index does not vouch for (a clean checkout: none). Exit 1: a file differs or is gone.
  const [blobs, differs] = await Promise.all([
    filesAt(top, commit, rel),
    git(top, [
      'diff',
      '--quiet',
      '--no-ext-diff',
      '--no-renames',
      '--diff-filter=DMT',
      commit,
      '--',
      rel || '.',
    ]).then(
      () => false,
      (error: unknown) => (error instanceof GitFailed && error.code === 1 ? true : undefined),
    ),
  ]);
  if (!blobs.length) return [];
  if (differs === true) return undefined;
  if (differs === false) return blobs.map((b) => b.file);
  let hashes: string[];
  try {
    const out = await git(
      top,
      ['hash-object', '--stdin-paths'],
      Buffer.from(`${blobs.map((b) => b.file).join('\n')}\n`),
    );
    hashes = out.toString('utf8').trim().split('\n');
  } catch {
    // A file of the base that the working tree lacks.
    return undefined;
  }
  return hashes.length === blobs.length && blobs.every((b, i) => b.sha === hashes[i])
    ? blobs.map((b) => b.file)
    : undefined;
}

/** Writes the files under `rel` at `commit` into `dest` (same relative paths); returns how many. */
async function copyTree(top: string, commit: string, rel: string, dest: string): Promise<number> {
  const blobs = await filesAt(top, commit, rel);
  if (!blobs.length) return 0;
  const out = await git(top, ['cat-file', '--batch'], Buffer.from(`${blobs.map((b) => b.sha).join('\n')}\n`));
  const files: { target: string; body: Buffer }[] = [];
  let at = 0;
  for (const blob of blobs) {
    const headerEnd = out.indexOf(0x0a, at);
    const header = out.subarray(at, headerEnd).toString('utf8');
    const size = Number(header.split(' ')[2]);
    files.push({
      target: path.join(dest, blob.file),
      body: out.subarray(headerEnd + 1, headerEnd + 1 + size),
    });
    at = headerEnd + 1 + size + 1;
  }
  // Each folder once, then the files, many at a time: a history has thousands of small files, and
  // creating them one after another waits on the file system for each (seconds on a slow disk).
  for (const dir of new Set(files.map((f) => path.dirname(f.target)))) mkdirSync(dir, { recursive: true });
  for (let i = 0; i < files.length; i += 64)
    await Promise.all(files.slice(i, i + 64).map((f) => writeFile(f.target, f.body)));
  return blobs.length;
}
