/** `300000` -> `5 min`, `1500` -> `1.5 s`, `12.3` -> `12 ms`. */
export function formatDuration(ms: number): string {
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1000) return `${+(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms)} ms`;
}

/** `1 migration`, `3 migrations`. */
export function plural(count: number, word: string, many = `${word}s`): string {
  return `${count} ${count === 1 ? word : many}`;
}
