// Runs the bundled CLI (dist/cli/index.js, as users run it) and reports its peak memory on fd 3.
import { writeSync } from 'node:fs';

process.on('exit', () => writeSync(3, `${JSON.stringify({ maxRssKb: process.resourceUsage().maxRSS })}\n`));
await import(new URL('../dist/cli/index.js', import.meta.url).href);
