// npm run schema: writes pg-migrate-verify.schema.json from the config file's validator, with the
// descriptions of action.yml's inputs (and of the keys that only the config file has).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { configJsonSchema } from '../src/settings.js';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');

/** Descriptions of the keys only the config file has. */
const ConfigOnly: Record<string, string> = {
  name: "The set's name in reports and comments (default: its migrations-dir).",
  sets: 'Several migration sets (a monorepo): each entry takes the per-set keys; the top-level keys apply to all of them.',
  accept:
    "Findings the team accepts on purpose: each needs 'id' (the migration) and 'reason'; 'check' (default ordering), 'set' and 'rule' narrow it.",
  env: 'Environment variables for migrations, assertions and commands (e.g. NODE_ENV).',
  'lock-rules': 'Severity of each rule of the locks check: error, warning (the default) or off.',
};

/** The schema text as written to the file (and compared with it by the tests). */
export function configSchemaText(): string {
  const action = YAML.parse(readFileSync(path.join(root, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { description?: string }>;
  };
  const schema = configJsonSchema((key) => action.inputs[key]?.description ?? ConfigOnly[key]);
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  writeFileSync(path.join(root, 'pg-migrate-verify.schema.json'), configSchemaText());
  console.log('wrote pg-migrate-verify.schema.json');
}
