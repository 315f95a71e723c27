/** Where progress and diagnostics go. The CLI writes to stderr, the Action to the runner log. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, debug() {} };
