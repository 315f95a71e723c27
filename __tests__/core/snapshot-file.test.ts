import { describe, expect, test } from '@jest/globals';
import { diffSnapshots, objectTitle, type SchemaSnapshot } from '../../src/core/schema.js';
import { byTitle, parseSnapshotFile, parseTitle, renderSnapshotFile } from '../../src/core/snapshot-file.js';

const snapshot: SchemaSnapshot = {
  'table:public.t': {
    kind: 'table',
    name: 'public.t',
    props: { columns: ['id', 'note'], persistence: 'permanent' },
  },
  'column:public.t.note': {
    kind: 'column',
    name: 'public.t.note',
    parent: 'public.t',
    props: { type: 'text', notNull: false },
  },
  'index:public.t_idx': {
    kind: 'index',
    name: 'public.t_idx',
    parent: 'public.t',
    props: { definition: 'CREATE INDEX t_idx ON public.t USING btree (note)' },
  },
  'materialized view:public.mv': {
    kind: 'materialized view',
    name: 'public.mv',
    props: { definition: ' SELECT 1 AS one;\n' },
  },
  'function:public.f(integer, text)': {
    kind: 'function',
    name: 'public.f(integer, text)',
    props: { body: 'BEGIN\n  RETURN 1;\nEND', config: ['search_path=app'] },
  },
  'constraint:public.t.on_call': {
    kind: 'constraint',
    name: 'on_call',
    parent: 'public.t',
    props: { type: 'check', version: '1.0' },
  },
};

describe('snapshot file', () => {
  test('renders the same bytes whatever the input order, and parses back to the same schema', () => {
    const reversed = Object.fromEntries(Object.entries(snapshot).reverse());
    const text = renderSnapshotFile(snapshot);
    expect(renderSnapshotFile(reversed)).toBe(text);
    expect(diffSnapshots(parseSnapshotFile(text), byTitle(snapshot))).toEqual([]);
    // Multi-line bodies stay readable blocks; strings that look like numbers stay strings.
    expect(text).toContain('  body: |-\n    BEGIN\n      RETURN 1;\n    END\n');
    expect(text).toContain('version: "1.0"');
  });

  test('a table is followed by its parts', () => {
    const titles = renderSnapshotFile(snapshot)
      .split('\n')
      .filter((l) => /^\S/.test(l) && !l.startsWith('#'));
    expect(titles).toEqual([
      'function public.f(integer, text):',
      'materialized view public.mv:',
      'table public.t:',
      'column public.t.note:',
      'constraint on_call on public.t:',
      'index public.t_idx on public.t:',
    ]);
  });

  test('titles parse back to kind, name and parent', () => {
    for (const object of Object.values(snapshot)) {
      const { props: _props, ...rest } = object;
      expect(parseTitle(objectTitle(object))).toEqual(rest);
    }
  });

  test('a file that is not a snapshot says what is wrong', () => {
    expect(() => parseSnapshotFile('- a\n- b\n')).toThrow(
      'expected a mapping of objects to their properties',
    );
    expect(() => parseSnapshotFile('table public.t: 3\n')).toThrow("entry 'table public.t' is not a mapping");
    expect(parseSnapshotFile('')).toEqual({});
  });
});
