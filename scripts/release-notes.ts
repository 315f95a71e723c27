// npx tsx scripts/release-notes.ts 1.2.0: the CHANGELOG's section for that version (what the
// release workflow puts on the GitHub release); exits 1, saying why, when there is none.
import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The text under `## [version]` up to the next `## [`, trimmed; undefined when absent or empty. */
export function releaseNotes(changelog: string, version: string): string | undefined {
  const lines = changelog.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^## \\[${version.replaceAll('.', '\\.')}\\]`).test(l));
  if (start < 0) return undefined;
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((l) => /^## \[/.test(l));
  const body = (end < 0 ? rest : rest.slice(0, end)).join('\n').trim();
  return body || undefined;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const version = (process.argv[2] ?? '').replace(/^v/, '');
  const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
  const notes = releaseNotes(readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8'), version);
  if (!notes) {
    console.error(
      `CHANGELOG.md has no section '## [${version}]' with text. Move the Unreleased entries under it (with the date) and commit before releasing.`,
    );
    process.exit(1);
  }
  console.log(notes);
}
