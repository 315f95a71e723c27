// Builds dist/: one ESM bundle (dist/lib) behind two entry points, the Action (dist/index.js) and
// the CLI (dist/cli/index.js).
// ncc's ESM output has no __dirname, and libpg-query's WASM file must sit next to the bundle.
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ncc = path.join(root, 'node_modules', '.bin', 'ncc');
const wasm = path.join(root, 'node_modules', 'libpg-query', 'wasm', 'libpg-query.wasm');

const shim = [
  "import { createRequire as __pgmvCreateRequire } from 'node:module';",
  "import { fileURLToPath as __pgmvFileURLToPath } from 'node:url';",
  "import { dirname as __pgmvDirname } from 'node:path';",
  'const __filename = __pgmvFileURLToPath(import.meta.url);',
  'const __dirname = __pgmvDirname(__filename);',
  'const require = __pgmvCreateRequire(import.meta.url);',
  '',
].join('\n');

function build(entry, outDir, banner) {
  rmSync(outDir, { recursive: true, force: true });
  execFileSync(ncc, ['build', entry, '-o', outDir, '--license', 'licenses.txt', '--target', 'es2022', '-q'], {
    cwd: root,
    stdio: 'inherit',
  });
  for (const file of readdirSync(outDir).filter((f) => f.endsWith('.js'))) {
    const target = path.join(outDir, file);
    const code = readFileSync(target, 'utf8');
    if (!code.includes('__pgmvCreateRequire'))
      writeFileSync(target, (file === 'index.js' ? banner : '') + shim + code);
  }
  copyFileSync(wasm, path.join(outDir, 'libpg-query.wasm'));
}

if (!existsSync(ncc)) throw new Error('ncc is missing: run npm install first');
// One bundle (dist/lib) holds everything, once; the Action's and the CLI's entry points load it.
const dist = path.join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
build('src/bundle.ts', path.join(dist, 'lib'), '');
mkdirSync(path.join(dist, 'cli'), { recursive: true });
writeFileSync(path.join(dist, 'package.json'), `${JSON.stringify({ type: 'module' }, null, 2)}\n`);
writeFileSync(
  path.join(dist, 'index.js'),
  "// The Action's entry point (action.yml runs.main): the run lives in the shared bundle.\nimport { run } from './lib/index.js';\n\nawait run();\n",
);
writeFileSync(
  path.join(dist, 'cli', 'index.js'),
  "#!/usr/bin/env node\n// The CLI's entry point (package.json bin): the run lives in the shared bundle.\nimport { runCli } from '../lib/index.js';\n\nprocess.exitCode = await runCli(process.argv.slice(2));\n",
  { mode: 0o755 },
);
