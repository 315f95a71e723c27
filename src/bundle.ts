// The one bundle both entry points load (dist/lib): the Action's run() and the CLI's runCli().
export { runCli } from './cli.js';
export { run } from './main.js';
