import { cp, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { doesNothing, headsOf, parseHistory, topologicalOrder } from '../src/migrations/alembic.js';
import { resolveSettings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { tempDir } from './helpers/git.js';
import { edgesOn, fixture, settingsFor, useTestServer, withoutLocks } from './helpers/postgres.js';
import { pythonTest } from './helpers/python.js';

const server = useTestServer();
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const project = fixture('alembic-project');

describe('the revision graph', () => {
  const history = `
Rev: 5e6f (head)
Parent: 4d5e
Path: /p/versions/5e6f_index.py

Rev: 4d5e (mergepoint)
Merges: 2b3c, 3c4d
Path: /p/versions/4d5e_merge.py

Rev: 2b3c
Parent: 1a2b
Path: /p/versions/2b3c_orders.py

Rev: 3c4d
Parent: 1a2b
Path: /p/versions/3c4d_mood.py

Rev: 1a2b (branchpoint)
Parent: <base>
Branches into: 2b3c, 3c4d
Path: /p/versions/1a2b_users.py
`;

  test('is read from `alembic history --verbose` and walked parents first', () => {
    const revisions = parseHistory(history);
    expect(revisions.map((r) => [r.id, r.parents.join('+')])).toEqual([
      ['5e6f', '4d5e'],
      ['4d5e', '2b3c+3c4d'],
      ['2b3c', '1a2b'],
      ['3c4d', '1a2b'],
      ['1a2b', ''],
    ]);
    expect(topologicalOrder(revisions).map((r) => r.id)).toEqual(['1a2b', '3c4d', '2b3c', '4d5e', '5e6f']);
    expect(headsOf(revisions)).toEqual(['5e6f']);
    expect(headsOf(revisions.slice(2))).toEqual(['2b3c', '3c4d']);
  });

  test('a merge whose downgrade does nothing is recognised', () => {
    expect(
      doesNothing(
        'def upgrade():\n    pass\n\n\ndef downgrade():\n    """Nothing."""\n    pass\n',
        'downgrade',
      ),
    ).toBe(true);
    expect(doesNothing('def downgrade():\n    op.drop_table("x")\n', 'downgrade')).toBe(false);
  });
});

describe('alembic projects', () => {
  pythonTest(
    ['psycopg2', 'sqlalchemy', 'alembic'],
    'a branch and a merge: each revision is undone alone, and the enum one downgrade leaves is found',
    async () => {
      const lines: string[] = [];
      const report = await verify(await settingsFor(project), edgesOn(server, lines));
      expect(report.sets[0]?.format).toBe('alembic');
      expect(report.sets[0]?.formatReason).toContain('5 revisions, one head, with merges');
      const migrations = report.sets[0]?.migrations ?? [];
      expect(migrations.map((m) => `${m.id} ${m.reversible}`)).toEqual([
        '1a2b3c4d5e6f yes',
        '3c4d5e6f7a8b no',
        '2b3c4d5e6f7a yes',
        '4d5e6f7a8b9c yes',
        '5e6f7a8b9c0d yes',
      ]);
      // Undoing the orders revision while the mood branch is applied leaves the mood branch alone.
      expect(migrations[2]?.changes).toContain('+ table public.orders');
      expect(migrations[2]?.changes.join(' ')).not.toContain('mood');
      expect(report.findings.map((f) => `${f.check} ${f.migration ?? '-'}`)).toEqual([
        'reversibility 3c4d5e6f7a8b',
        'reversibility 3c4d5e6f7a8b',
        'rollback-all -',
      ]);
      expect(report.findings[0]?.message).toContain('enum public.mood: present after down, absent before up');
      expect(report.findings[0]?.file).toBe(
        'fixtures/alembic-project/migrations/versions/3c4d5e6f7a8b_add_user_mood.py',
      );
      expect(report.findings[1]?.message).toContain(
        '`alembic upgrade 3c4d5e6f7a8b` exited with 1: sqlalchemy.exc.ProgrammingError: (psycopg2.errors.DuplicateObject) type "mood" already exists',
      );
      // alembic_version is alembic's history, not a leftover.
      expect(report.findings[2]?.message).not.toContain('alembic_version');
    },
  );

  pythonTest(['psycopg2', 'sqlalchemy', 'alembic'], 'two heads are an ordering finding', async () => {
    const dir = await tempDir('pgmv-alembic-');
    dirs.push(dir);
    await cp(project, dir, { recursive: true });
    await rm(path.join(dir, 'migrations', 'versions', '4d5e6f7a8b9c_merge_branches.py'));
    await rm(path.join(dir, 'migrations', 'versions', '5e6f7a8b9c0d_index_orders_user.py'));
    const settings = await resolveSettings(
      withoutLocks({ 'migrations-dir': dir, only: 'ordering,apply' }),
      dir,
    );
    const report = await verify(settings, edgesOn(server));
    expect(report.findings.map((f) => f.check)).toEqual(['ordering']);
    expect(report.findings[0]?.message).toContain(
      'The alembic graph has 2 heads (`2b3c4d5e6f7a`, `3c4d5e6f7a8b`), so `alembic upgrade head` on production stops with "Multiple head revisions are present"',
    );
  });
});
