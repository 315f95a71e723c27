import { constants, existsSync, rmSync } from 'node:fs';
import { access, mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * Cleanups that must run however the process ends: normal return, thrown error, SIGINT, SIGTERM.
 * Servers and temp dirs register here so that a cancelled CI job leaves nothing behind.
 */
export interface Cleanup {
  /** Best effort, synchronous: runs from the 'exit' event, where nothing can be awaited. */
  sync(): void;
  /** The graceful path: runs on SIGINT / SIGTERM / SIGHUP before the process exits. */
  async(): Promise<void>;
}

const pending = new Set<Cleanup>();
let installed = false;

const signalNumbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const cleanup of pending) {
      try {
        cleanup.sync();
      } catch {
        // Nothing more can be done while exiting.
      }
    }
  });
  for (const signal of Object.keys(signalNumbers)) {
    process.once(signal as NodeJS.Signals, () => {
      const all = [...pending].map((c) => c.async().catch(() => {}));
      // A second signal, or a cleanup that hangs, must not keep the process alive.
      const guard = setTimeout(() => process.exit(128 + (signalNumbers[signal] ?? 0)), 10_000);
      guard.unref();
      void Promise.all(all).finally(() => process.exit(128 + (signalNumbers[signal] ?? 0)));
    });
  }
}

/** Registers a cleanup; the returned function unregisters it (call it once the resource is released). */
export function registerCleanup(cleanup: Cleanup): () => void {
  install();
  pending.add(cleanup);
  return () => {
    pending.delete(cleanup);
  };
}

/**
 * Where our temp files go: PG_MIGRATE_VERIFY_TMPDIR when set, else a tmpfs (/dev/shm) when there
 * is a writable one (servers' data directories and thousands of small migration files are created
 * and deleted there in a fraction of a disk's time), else the system's temp directory.
 */
export async function fastTempRoot(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return env.PG_MIGRATE_VERIFY_TMPDIR ?? (await writableDir('/dev/shm')) ?? os.tmpdir();
}

async function writableDir(dir: string): Promise<string | undefined> {
  try {
    if (!(await stat(dir)).isDirectory()) return undefined;
    await access(dir, constants.W_OK);
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * Fills the cache entry `target` unless `marker` (a file inside it) already exists: `fill` builds the
 * entry in a staging folder beside it and returns the folder to move into place, so a run that is cut
 * off never leaves half an entry where the next one looks. The staging folder is removed however the
 * run ends (a signal too). A run that loses the race to another keeps theirs: it is as good as ours.
 */
export async function fillCacheEntry(
  target: string,
  marker: string,
  fill: (staging: string) => Promise<string>,
): Promise<void> {
  if (existsSync(marker)) return;
  await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
  const staging = await mkdtemp(`${target}.tmp-`);
  const unregister = registerCleanup({
    sync: () => rmSync(staging, { recursive: true, force: true }),
    async: () => rm(staging, { recursive: true, force: true }),
  });
  try {
    const built = await fill(staging);
    await rename(built, target).catch((error: NodeJS.ErrnoException) => {
      if (!existsSync(marker)) throw error;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
    unregister();
  }
}
