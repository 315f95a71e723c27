// Runs the CLI once in this process and prints its peak memory, so that the bench measures the tool alone.
import { runCli } from '../src/cli.js';

const code = await runCli(process.argv.slice(2), {
  stdout: () => {},
  stderr: (t) => process.stderr.write(t),
  env: process.env,
  cwd: process.cwd(),
});
process.stdout.write(`${JSON.stringify({ code, maxRssKb: process.resourceUsage().maxRSS })}\n`);
