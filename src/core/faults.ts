/**
 * Faults of the environment that show up as a failing step: the migration is not to blame, so
 * they end the run as "could not check" (exit 2), never as findings.
 */

/** The extension a step needs and the server lacks, from the error's text; undefined otherwise. */
export function missingExtension(text: string): string | undefined {
  // PostgreSQL 15+: `extension "postgis" is not available`; 14 and older name the control file.
  const name =
    /extension "([^"]+)" is not available/.exec(text)?.[1] ??
    /could not open extension control file "[^"]*?\/([^/"]+)\.control"/.exec(text)?.[1] ??
    /could not access file "\$libdir\/([^"]+)"/.exec(text)?.[1];
  return name;
}

/** Whether a server error is "permission denied" (42501): e.g. event triggers, which need a superuser. */
export function permissionDenied(error: unknown): boolean {
  return (error as { code?: unknown }).code === '42501';
}

/** SQLSTATEs of a session the server ended or could not give: admin or crash shutdown, connection failures. */
const LostCodes = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006']);

/**
 * True when the error says the session to the server was lost (the server stopped, crashed or
 * ended the session), from the driver's code or the text any client prints (node-postgres,
 * psycopg2, libpq).
 */
export function lostConnection(error: { code?: unknown; message?: string }, text = ''): boolean {
  if (typeof error.code === 'string' && LostCodes.has(error.code)) return true;
  if (error.code === 'ECONNRESET' || error.code === 'ECONNREFUSED' || error.code === 'EPIPE') return true;
  return /Connection terminated unexpectedly|server closed the connection unexpectedly|terminating connection (?:due to|because of)|the database system is (?:shutting down|starting up|in recovery mode)|Client has encountered a connection error|connect ECONNREFUSED|read ECONNRESET/i.test(
    `${error.message ?? ''}\n${text}`,
  );
}
