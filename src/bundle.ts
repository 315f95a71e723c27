// The one bundle both entry points load (dist/lib): the CLI's runCli(), and the Action's run(),
// whose GitHub client is loaded only when the Action runs (the CLI never needs it).
import { runCli as cli } from './cli.js';
import { capYoungGeneration } from './memory.js';

export async function runCli(argv: string[]): Promise<number> {
  capYoungGeneration();
  return cli(argv);
}

export async function run(): Promise<void> {
  capYoungGeneration();
  const { run: runAction } = await import('./main.js');
  await runAction();
}
