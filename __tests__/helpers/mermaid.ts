import { spawnSync } from 'node:child_process';
import path from 'node:path';

const helper = path.join(path.dirname(new URL(import.meta.url).pathname), 'mermaid-parse.mjs');

/** Mermaid's own parser (the one GitHub draws with), in a process of its own: the error per diagram, undefined where it parses. */
export function mermaidErrors(...texts: string[]): (string | undefined)[] {
  const run = spawnSync(process.execPath, [helper], { input: JSON.stringify(texts), encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`the Mermaid parser did not run: ${run.stderr}`);
  return (JSON.parse(run.stdout) as (string | null)[]).map((e) => e ?? undefined);
}

/** The Mermaid diagrams in a Markdown text. */
export function mermaidBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```mermaid\n([\s\S]*?)\n```$/gm)].map((m) => m[1] as string);
}
