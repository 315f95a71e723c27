// Builds dist/: the Action (dist/index.js) and the CLI (dist/cli/index.js), each one ESM bundle.
// ncc's ESM output has no __dirname, and libpg-query's WASM file must sit next to each bundle.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
build('src/index.ts', path.join(root, 'dist'), '');
build('src/bin/pg-migrate-verify.ts', path.join(root, 'dist', 'cli'), '#!/usr/bin/env node\n');
