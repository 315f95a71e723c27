import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const env = {
  ...process.env,
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 'test@example.invalid',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 'test@example.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: os.tmpdir(),
};

/** A real git repository in a temp dir, driven with the real git. */
export interface Repo {
  dir: string;
  git(...args: string[]): string;
  write(files: Record<string, string>): Promise<void>;
  remove(...files: string[]): Promise<void>;
  commit(message: string): void;
}

export function gitIn(dir: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd: dir,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

export async function makeRepo(dir?: string): Promise<Repo> {
  const root = dir ?? (await tempDir('pgmv-git-'));
  if (!dir) gitIn(root, 'init', '-q', '-b', 'main');
  return {
    dir: root,
    git: (...args) => gitIn(root, ...args),
    async write(files) {
      for (const [file, text] of Object.entries(files)) {
        await mkdir(path.dirname(path.join(root, file)), { recursive: true });
        await writeFile(path.join(root, file), text);
      }
    },
    async remove(...files) {
      for (const file of files) await rm(path.join(root, file), { force: true });
    },
    commit(message) {
      gitIn(root, 'add', '-A');
      gitIn(root, 'commit', '-q', '--allow-empty', '-m', message);
    },
  };
}
