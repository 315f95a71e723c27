/**
 * The tool could not check (bad input, Postgres would not start, ...): exit status 2.
 * The message quotes the value and says the fix; `cause` keeps the underlying error.
 */
export class CannotCheck extends Error {
  override name = 'CannotCheck';
}

/** The message of anything thrown, without a stack. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
