// The one bundle both entry points load (dist/lib): the CLI's runCli(), and the Action's run(),
// whose GitHub client is loaded only when the Action runs (the CLI never needs it).
export { runCli } from './cli.js';

export async function run(): Promise<void> {
  const { run: runAction } = await import('./main.js');
  await runAction();
}
