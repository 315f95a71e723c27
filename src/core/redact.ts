/** Replaces the password of every connection URL in `text` with `***`. */
export function redactUrls(text: string): string {
  // user:password@host in any scheme://; also keyword form password=... in conninfo strings.
  return text
    .replace(
      /([a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]*:)([^@/?#\s]*)(@)/gi,
      (_m, a: string, _p: string, c: string) => `${a}***${c}`,
    )
    .replace(/(\bpassword\s*=\s*)('[^']*'|[^\s&]+)/gi, '$1***');
}

/** The password in a connection URL, if it has one (so it can also be masked where it appears alone). */
export function passwordOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.password ? decodeURIComponent(parsed.password) : undefined;
  } catch {
    return undefined;
  }
}
