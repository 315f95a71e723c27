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
