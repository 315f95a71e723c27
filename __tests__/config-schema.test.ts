import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { Ajv } from 'ajv';
import YAML from 'yaml';
import { configSchemaText } from '../scripts/config-schema.js';
import { CheckIds } from '../src/core/findings.js';
import { LockRules } from '../src/core/locks.js';
import { readConfigFile } from '../src/settings.js';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const committed = readFileSync(path.join(root, 'pg-migrate-verify.schema.json'), 'utf8');
const schema = JSON.parse(committed) as {
  properties: Record<string, { description?: string }> & {
    sets: { items: { properties: Record<string, unknown> } };
    accept: { items: { properties: Record<string, unknown> } };
    'lock-rules': { properties: Record<string, unknown> };
  };
};
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** The tool's own verdict on a config file: accepted, or the message it ends with. */
async function toolReads(config: unknown): Promise<true | string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pgmv-schema-'));
  dirs.push(dir);
  await writeFile(path.join(dir, 'pg-migrate-verify.yml'), YAML.stringify(config));
  try {
    await readConfigFile(dir);
    return true;
  } catch (error) {
    return (error as Error).message;
  }
}

/** A value of each kind that the tool takes, and one it refuses (none for free text). */
function examples(key: string): { good: unknown[]; bad: unknown[] } {
  const choices: Record<string, string[]> = {
    format: ['auto', 'sql', 'alembic'],
    postgres: ['binaries', 'url'],
    'postgres-version': ['16'],
    scope: ['changed', 'all'],
    'fail-on': ['warning'],
  };
  if (choices[key]) return { good: choices[key], bad: ['nope', ''] };
  if (key === 'postgres-version') return { good: [], bad: [] };
  if (['update-snapshot', 'comment', 'require-down', 'assertions-strict'].includes(key))
    return { good: [true, false, 'yes', 'off'], bad: ['maybe', 2] };
  if (key === 'step-timeout') return { good: ['90s', 300, '5m', '1500ms'], bad: ['soon', -1, '5 minutes'] };
  if (key === 'jobs') return { good: ['auto', 1, 4, '2'], bad: [0, 'many', 1.5, '-1'] };
  if (key === 'only' || key === 'skip')
    return {
      good: ['apply', 'apply, ordering', ['reversibility', 'locks']],
      bad: ['revers', ['apply', 'x']],
    };
  return { good: ['some/text', 'a command {id}'], bad: [['a', 'list'], { a: 1 }] };
}

describe('the JSON Schema of pg-migrate-verify.yml', () => {
  test('the committed file is the one the validator generates (run `npm run schema` after changing keys)', () => {
    expect(committed).toBe(configSchemaText());
  });

  const top = Object.keys(schema.properties).filter(
    (k) => !['sets', 'accept', 'env', 'lock-rules'].includes(k),
  );
  const inSets = Object.keys(schema.properties.sets.items.properties);

  test('has every key the tool reads, each described, and no other', async () => {
    expect(top).toContain('migrations-dir');
    expect(top).toContain('jobs');
    expect(top).not.toContain('github-token');
    expect(inSets).toContain('name');
    for (const key of [...Object.keys(schema.properties), ...inSets])
      expect([key, schema.properties[key]?.description ?? (inSets.includes(key) ? 'set' : '')]).not.toEqual([
        key,
        '',
      ]);
    expect(Object.keys(schema.properties.accept.items.properties).sort()).toEqual([
      'check',
      'id',
      'reason',
      'rule',
      'set',
    ]);
    expect(Object.keys(schema.properties['lock-rules'].properties).sort()).toEqual([...LockRules].sort());
    // A key the schema does not have is one the tool refuses, at the top, in a set, in accept.
    for (const config of [
      { 'no-such-key': 1 },
      { sets: [{ 'migrations-dir': 'a', nope: 1 }] },
      { accept: [{ id: 'a', reason: 'b', why: 1 }] },
    ]) {
      expect(validate(config)).toBe(false);
      expect(await toolReads(config)).toMatch(/unknown key/);
    }
  });

  test('agrees with the tool on a value it takes and one it refuses, for every key', async () => {
    const disagreements: string[] = [];
    for (const key of top) {
      const { good, bad } = examples(key);
      for (const [value, takes] of [
        ...good.map((v) => [v, true] as const),
        ...bad.map((v) => [v, false] as const),
      ]) {
        for (const config of [
          { [key]: value },
          ...(inSets.includes(key) ? [{ sets: [{ [key]: value }] }] : []),
        ]) {
          const editor = validate(config);
          const tool = await toolReads(config);
          if (editor !== takes || (tool === true) !== takes)
            disagreements.push(
              `${JSON.stringify(config)}: schema ${editor}, tool ${tool}, expected ${takes}`,
            );
        }
      }
    }
    expect(disagreements).toEqual([]);
  });

  test("a refused value's message names the key, the value and what it takes", async () => {
    expect(await toolReads({ jobs: 0 })).toBe(
      "Config file 'pg-migrate-verify.yml': 'jobs' is 0. Expected 'auto' or a whole number of at least 1.",
    );
    expect(await toolReads({ sets: [{ format: 'sqll' }] })).toBe(
      "Config file 'pg-migrate-verify.yml' at 'sets.0': 'format' is \"sqll\". Allowed values: auto, sql, sequelize, umzug, alembic, command.",
    );
    expect(await toolReads({ only: 'apply, revers' })).toContain(`out of ${CheckIds.join(', ')}`);
  });
});
