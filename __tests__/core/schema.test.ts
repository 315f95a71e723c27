import { describe, expect, test } from '@jest/globals';
import {
  describeDifference,
  diffSnapshots,
  type SchemaSnapshot,
  summarizeChanges,
} from '../../src/core/schema.js';

const table = (name: string, columns: string[], extra = {}): SchemaSnapshot[string] => ({
  kind: 'table',
  name,
  props: { columns, persistence: 'permanent', ...extra },
});
const column = (table: string, name: string, props = {}): SchemaSnapshot[string] => ({
  kind: 'column',
  name: `${table}.${name}`,
  parent: table,
  props: { type: 'text', notNull: false, ...props },
});
const sides = { before: 'before up', after: 'after down' };

describe('diffSnapshots', () => {
  test('added, removed and changed objects, sorted by key', () => {
    const before: SchemaSnapshot = {
      'table:public.a': table('public.a', ['id']),
      'column:public.a.id': column('public.a', 'id', { notNull: true }),
      'enum:public.mood': { kind: 'enum', name: 'public.mood', props: { labels: ['happy'] } },
    };
    const after: SchemaSnapshot = {
      'table:public.a': table('public.a', ['id']),
      'column:public.a.id': column('public.a', 'id', { notNull: false }),
      'index:public.a_idx': {
        kind: 'index',
        name: 'public.a_idx',
        parent: 'public.a',
        props: { definition: 'CREATE INDEX ...' },
      },
    };
    const diffs = diffSnapshots(before, after);
    expect(diffs.map((d) => describeDifference(d, sides))).toEqual([
      'column public.a.id: not null differs (before up: true; after down: false)',
      'enum public.mood: absent after down, present before up',
      'index public.a_idx on public.a: present after down, absent before up',
    ]);
    expect(summarizeChanges(diffs)).toEqual([
      '~ column public.a.id',
      '- enum public.mood',
      '+ index public.a_idx on public.a',
    ]);
  });

  test('null and absent properties are the same; arrays compare by value', () => {
    const a: SchemaSnapshot = {
      'enum:e': { kind: 'enum', name: 'e', props: { labels: ['x', 'y'], comment: null } },
    };
    const b: SchemaSnapshot = { 'enum:e': { kind: 'enum', name: 'e', props: { labels: ['x', 'y'] } } };
    expect(diffSnapshots(a, b)).toEqual([]);
    const c: SchemaSnapshot = { 'enum:e': { kind: 'enum', name: 'e', props: { labels: ['y', 'x'] } } };
    expect(diffSnapshots(a, c).map((d) => d.severity)).toEqual(['error']);
  });

  test('a table column order difference alone is a warning', () => {
    const before = { 't:a': table('public.a', ['id', 'x', 'y']) };
    const after = { 't:a': table('public.a', ['id', 'y', 'x']) };
    const [d] = diffSnapshots(before, after);
    expect(d?.severity).toBe('warning');
    expect(describeDifference(d as never, sides)).toBe(
      'table public.a: column order differs (before up: id, x, y; after down: id, y, x)',
    );
  });

  test('a whole table that appears carries its parts instead of listing them', () => {
    const after: SchemaSnapshot = {
      'table:public.t': table('public.t', ['id', 'name']),
      'column:public.t.id': column('public.t', 'id'),
      'column:public.t.name': column('public.t', 'name'),
      'index:public.t_pkey': { kind: 'index', name: 'public.t_pkey', parent: 'public.t', props: {} },
      'sequence:public.t_id_seq': {
        kind: 'sequence',
        name: 'public.t_id_seq',
        props: { ownedBy: 'public.t.id' },
      },
    };
    const diffs = diffSnapshots({}, after);
    expect(diffs.map((d) => describeDifference(d, sides))).toEqual([
      'table public.t (with its 2 columns, 1 index, 1 sequence): present after down, absent before up',
    ]);
  });

  test('a column added to an existing table is said once, by the column', () => {
    const before = {
      'table:public.a': table('public.a', ['id']),
      'column:public.a.id': column('public.a', 'id'),
    };
    const after = {
      'table:public.a': table('public.a', ['id', 'b']),
      'column:public.a.id': column('public.a', 'id'),
      'column:public.a.b': column('public.a', 'b'),
    };
    expect(summarizeChanges(diffSnapshots(before, after))).toEqual(['+ column public.a.b']);
  });

  test('only the given keys are compared', () => {
    const before = {
      'enum:a': { kind: 'enum', name: 'a', props: { labels: ['x'] } },
      'enum:b': { kind: 'enum', name: 'b', props: {} },
    };
    expect(diffSnapshots(before, {}, ['enum:a']).map((d) => d.key)).toEqual(['enum:a']);
  });
});
