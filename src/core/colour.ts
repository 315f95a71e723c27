/**
 * Colour for a terminal: on when standard output is one, off when `NO_COLOR` is set (no-color.org)
 * or `TERM` is `dumb`; `FORCE_COLOR` (anything but `0`) turns it on for a pipe that renders it.
 */
export function wantsColour(isTTY: boolean | undefined, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR) return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  if (env.TERM === 'dumb') return false;
  return !!isTTY;
}

const Sgr = {
  reset: '\x1b[0m',
  bold: '\x1b[1m',
  dim: '\x1b[2m',
  red: '\x1b[31m',
  green: '\x1b[32m',
  yellow: '\x1b[33m',
};
const paint = (codes: string, text: string) => `${codes}${text}${Sgr.reset}`;

/** One line of the CLI's output with its marks coloured: ✓ and PASSED green, ✗, errors and FAILED red, warnings yellow, notes dim. */
export function colourLine(line: string): string {
  return line
    .replace(/^✓ /, `${paint(Sgr.green, '✓')} `)
    .replace(/^✗ /, `${paint(Sgr.red, '✗')} `)
    .replace(/^pg-migrate-verify: PASSED:/, `pg-migrate-verify: ${paint(Sgr.bold + Sgr.green, 'PASSED')}:`)
    .replace(/^pg-migrate-verify: FAILED:/, `pg-migrate-verify: ${paint(Sgr.bold + Sgr.red, 'FAILED')}:`)
    .replace(
      /^pg-migrate-verify: could not check\./,
      `pg-migrate-verify: ${paint(Sgr.bold + Sgr.red, 'could not check')}.`,
    )
    .replace(/^ {2}error {2}/, `  ${paint(Sgr.red, 'error')}  `)
    .replace(/^ {2}warn {3}/, `  ${paint(Sgr.yellow, 'warn ')}  `)
    .replace(/^ {2}(note|accepted) {2}/, (_m, label: string) => `  ${paint(Sgr.dim, label)}  `);
}

/** `text` without the colour codes. */
export function withoutColour(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape that starts a colour code is what it removes.
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}

/** `text` (lines ending in newlines) coloured line by line. */
export function colourText(text: string): string {
  return text
    .split('\n')
    .map((line) => colourLine(line))
    .join('\n');
}
