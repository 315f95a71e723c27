import type { CheckEvent } from './core/events.js';
import type { Logger } from './core/logger.js';
import type { PostgresOptions } from './postgres/index.js';
import type { StartedPostgres } from './postgres/types.js';

/** Everything verify() reaches outside itself, passed in so tests and both entry points choose. */
export interface Edges {
  log: Logger;
  /** What the checks report as they run; the CLI prints lines, the Action logs them. */
  emit(event: CheckEvent): void;
  startPostgres(options: PostgresOptions): Promise<StartedPostgres>;
  /** Milliseconds from a monotonic clock. */
  now(): number;
  env?: NodeJS.ProcessEnv;
  /** Walk one migration at a time, never in passes: what the tests compare the passes with. */
  oneAtATime?: boolean;
}
