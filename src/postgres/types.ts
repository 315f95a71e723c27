/** A server a provider has started (or been given) and that the checks may create databases in. */
export interface StartedPostgres {
  provider: ProviderName;
  /** Server version as Postgres reports it, e.g. `17.6`. */
  version: string;
  major: number;
  /** Connection string to the maintenance database. */
  adminUrl: string;
  /** Creates a scratch database, by default an empty one (from template0). */
  createDatabase(options?: { template?: string; name?: string }): Promise<ScratchDatabase>;
  /** Stops the server (or drops the scratch databases on a given one) and removes every temp file. */
  stop(): Promise<void>;
  /** Undefined while the server is fine; else what happened to it (it exited, crashed, does not answer). */
  health(): Promise<ServerFault | undefined>;
}

/** What went wrong with a server under the checks, for a "could not check" message. */
export interface ServerFault {
  /** Follows "PostgreSQL ": `exited (killed by SIGKILL)`, `does not answer (...)`. */
  what: string;
  /** The last lines of its log, where the tool has it. */
  log?: string;
}

export interface ScratchDatabase {
  name: string;
  /** What the migrations and the tools that run them connect to. */
  url: string;
  /** What the tool's own sessions connect to (the server's Unix socket, where the provider has one). */
  localUrl?: string;
  drop(): Promise<void>;
}

export type ProviderName = 'binaries' | 'docker' | 'url';
export const ProviderChoices = ['auto', 'binaries', 'docker', 'url'] as const;
export type ProviderChoice = (typeof ProviderChoices)[number];

export const SupportedMajors = [14, 15, 16, 17, 18] as const;
