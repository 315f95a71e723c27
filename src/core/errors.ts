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

/** A folder named by an input that does not exist or cannot be read: the input, the value, the fix. */
export function unreadableFolder(input: string, shown: string, error: unknown, fix: string): CannotCheck {
  const why =
    (error as NodeJS.ErrnoException).code === 'ENOENT'
      ? 'does not exist'
      : `cannot be read (${messageOf(error)})`;
  return new CannotCheck(`Input '${input}' points to '${shown}', which ${why}. ${fix}`, { cause: error });
}
