import { describe, expect, test } from '@jest/globals';
import { MaxPictureTables, renderErd, type SchemaPicture, schemaPicture } from '../src/core/erd.js';
import { renderMarkdown } from '../src/core/markdown.js';
import type { Report } from '../src/core/report.js';
import type { SchemaObject, SchemaSnapshot } from '../src/core/schema.js';
import { mermaidErrors } from './helpers/mermaid.js';

const mermaidError = async (text: string) => mermaidErrors(text)[0];

const table = (name: string, columns: string[]): SchemaObject => ({
  kind: 'table',
  name,
  props: { columns },
});
const column = (table: string, name: string, type: string, notNull = false): SchemaObject => ({
  kind: 'column',
  name: `${table}.${/^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`}`,
  parent: table,
  props: { type, notNull },
});
const constraint = (table: string, name: string, type: string, definition: string): SchemaObject => ({
  kind: 'constraint',
  name: `${table}.${name}`,
  parent: table,
  props: { type, definition },
});
const snapshot = (...objects: SchemaObject[]): SchemaSnapshot =>
  Object.fromEntries(objects.map((o) => [`${o.kind}:${o.name}`, o]));

const users = [
  table('public.users', ['id', 'email']),
  column('public.users', 'id', 'bigint', true),
  column('public.users', 'email', 'text'),
  constraint('public.users', 'users_pkey', 'primary key', 'PRIMARY KEY (id)'),
];
const before = snapshot(
  ...users,
  table('public.legacy', ['id']),
  column('public.legacy', 'id', 'integer', true),
  table('public.accounts', ['id', 'nickname', 'balance']),
  column('public.accounts', 'id', 'integer', true),
  column('public.accounts', 'nickname', 'text'),
  column('public.accounts', 'balance', 'integer'),
);
const after = snapshot(
  ...users,
  table('public.accounts', ['id', 'balance', 'owner_id']),
  column('public.accounts', 'id', 'integer', true),
  column('public.accounts', 'balance', 'bigint'),
  column('public.accounts', 'owner_id', 'bigint', true),
  constraint(
    'public.accounts',
    'accounts_owner_fkey',
    'foreign key',
    'FOREIGN KEY (owner_id) REFERENCES users(id)',
  ),
  table('public.orders', ['id', 'account_id']),
  column('public.orders', 'id', 'bigint', true),
  column('public.orders', 'account_id', 'integer'),
  constraint('public.orders', 'orders_pkey', 'primary key', 'PRIMARY KEY (id)'),
  constraint(
    'public.orders',
    'orders_account_fkey',
    'foreign key',
    'FOREIGN KEY (account_id) REFERENCES public.accounts(id)',
  ),
);

describe('the picture of a schema change', () => {
  test('added, changed and dropped tables with their column changes, keys, and the tables their foreign keys reach', async () => {
    const picture = schemaPicture(before, after, [
      'public.accounts',
      'public.legacy',
      'public.orders',
    ]) as SchemaPicture;
    const text = renderErd(picture);
    expect(text).toBe(
      [
        'erDiagram',
        '  t1["public.accounts (changed)"] {',
        '    integer id',
        '    bigint balance "changed: type integer -> bigint"',
        '    bigint owner_id FK "added"',
        '    text nickname "dropped"',
        '  }',
        '  t2["public.legacy (dropped)"] {',
        '    integer id',
        '  }',
        '  t3["public.orders (added)"] {',
        '    bigint id PK',
        '    integer account_id FK',
        '  }',
        '  t4["public.users"] {',
        '    bigint id PK',
        '  }',
        '  t1 }o--|| t4 : "accounts_owner_fkey"',
        '  t3 }o--o| t1 : "orders_account_fkey"',
      ].join('\n'),
    );
    expect(await mermaidError(text)).toBeUndefined();
  });

  test('no table changed (a function, a type): no picture', () => {
    const fn: SchemaObject = { kind: 'function', name: 'public.f()', props: { body: 'select 1' } };
    expect(schemaPicture(before, { ...before, 'function:public.f()': fn }, [])).toBeUndefined();
  });

  test('hostile names cannot break the diagram or the Markdown around it', async () => {
    const names = [
      'we"ird',
      'a b}{',
      '%%x',
      'PK',
      '`code`',
      'line\nbreak',
      'x;y#z',
      'ünï',
      '```',
      'back\\slash',
    ];
    const t = 'public."Evil ""} %% ```"';
    const objects = [
      table(t, names),
      ...names.map((n, i) => column(t, n, i % 2 ? 'character varying(20)' : 'timestamp(3) with time zone')),
      constraint(t, '"fk ""}: x"', 'foreign key', `FOREIGN KEY ("we""ird") REFERENCES users(id)`),
    ];
    const picture = schemaPicture(snapshot(...users), snapshot(...users, ...objects), [t]) as SchemaPicture;
    const text = renderErd(picture);
    expect(await mermaidError(text)).toBeUndefined();
    const report: Report = {
      version: 1,
      result: 'passed',
      postgres: { version: '16.4', provider: 'binaries' },
      sets: [{ name: 'db', dir: 'db', format: 'sql', scope: 'all', notes: [], migrations: [], picture }],
      findings: [],
      timings: { total: 10 },
    };
    const markdown = renderMarkdown(report);
    // One fence opens the diagram and one closes it: nothing inside ends it early.
    expect(markdown.split('\n').filter((l) => l.startsWith('```')).length).toBe(2);
    expect(markdown).toContain('<summary>Schema change: 1 table (1 added)</summary>');
  });

  test('a large change is capped, saying how many tables are left out', async () => {
    const many = Array.from({ length: 30 }, (_, i) => [
      table(`public.t${i}`, ['id']),
      column(`public.t${i}`, 'id', 'integer', true),
    ]).flat();
    const picture = schemaPicture(
      {},
      snapshot(...many),
      many.filter((o) => o.kind === 'table').map((o) => o.name),
    ) as SchemaPicture;
    expect(picture.tables).toHaveLength(MaxPictureTables);
    expect(picture.more).toBe(30 - MaxPictureTables);
    expect(await mermaidError(renderErd(picture))).toBeUndefined();
    const markdown = renderMarkdown({
      version: 1,
      result: 'passed',
      postgres: null,
      sets: [{ name: 'db', dir: 'db', format: 'sql', scope: 'all', notes: [], migrations: [], picture }],
      findings: [],
      timings: {},
    });
    expect(markdown).toContain('Schema change: 20 tables (20 added); 10 more tables not drawn');
  });

  test('Mermaid refuses a broken diagram (the check can fail)', async () => {
    expect(await mermaidError('erDiagram\n  t1["a"] {\n    int 1x "q"u"\n  }\n')).toBeDefined();
  });
});
