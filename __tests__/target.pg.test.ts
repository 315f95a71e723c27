import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import { readSnapshot } from '../src/catalog/tracker.js';
import { BookkeepingSchema } from '../src/core/bookkeeping.js';
import type { Report } from '../src/core/report.js';
import { flywayChecksum } from '../src/core/target.js';
import { loadMigrations } from '../src/migrations/index.js';
import type { Format } from '../src/migrations/types.js';
import type { StartedPostgres } from '../src/postgres/types.js';
import { type RawInputs, resolveSettings } from '../src/settings.js';
import { TargetApplicationName, TargetSession } from '../src/target/session.js';
import { verify } from '../src/verify.js';
import { edgesOn, fixture, openRunner, repoRoot, useTestServer } from './helpers/postgres.js';
import { type PythonTool, pythonTest } from './helpers/python.js';
import { caughtUp, startPrimary, startStandby } from './helpers/standby.js';

// The deploy gate against "production" databases the tests build on their own servers: the
// repository's migrations applied by the real runners, the tool's history table as it writes it.

const server = useTestServer();

async function sql(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResultRow[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

/**
 * A production database on `on`: the first `upTo` migrations of `dir` applied by the tool's own
 * runner (which drives sequelize, alembic or a Python runner for real), then `history` (the
 * history table as the format's tool keeps it, where the runner does not write it) and `extra`.
 */
async function production(
  dir: string,
  format: Format,
  upTo: number,
  history = '',
  extra = '',
  on: StartedPostgres = server,
  raw: RawInputs = {},
): Promise<string> {
  const settings = await resolveSettings({ 'migrations-dir': dir, format, ...raw }, repoRoot);
  const set = settings.sets[0];
  const loaded = await loadMigrations(set?.dir ?? dir, format, settings.workingDirectory, {
    commands: set?.commands,
    env: process.env,
  });
  const db = await on.createDatabase();
  const runner = await openRunner(db.url);
  try {
    for (const m of loaded.migrations.slice(0, upTo)) {
      const outcome = await runner.up(m);
      if (!outcome.ok) throw outcome.error;
    }
  } finally {
    await runner.close();
    await loaded.close?.();
  }
  await sql(db.url, `DROP SCHEMA ${BookkeepingSchema} CASCADE; ${history} ${extra}`);
  return db.url;
}

async function gate(dir: string, url: string, raw: RawInputs = {}, on = server): Promise<Report> {
  const settings = await resolveSettings(
    { 'migrations-dir': dir, 'target-database-url': url, ...raw },
    repoRoot,
  );
  return verify(settings, edgesOn(on));
}

const targetFindings = (report: Report) => report.findings.filter((f) => f.check === 'target');

const golang = 'fixtures/sql-golang-ok';
const golangHistory = (version: number, dirty = false) =>
  `CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);
   INSERT INTO schema_migrations VALUES (${version}, ${dirty});`;

describe("each tool's history table is read as that tool reads it", () => {
  const flyway = async () => {
    const text = (f: string) => readFile(fixture(`sql-flyway-ok/${f}`), 'utf8');
    return `CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
      type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by varchar(100) NOT NULL,
      installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, success boolean NOT NULL);
     INSERT INTO flyway_schema_history VALUES
       (1, '1', 'create accounts', 'SQL', 'V1__create_accounts.sql', ${flywayChecksum(await text('V1__create_accounts.sql'))}, 'deploy', now(), 5, true),
       (2, '1.1', 'add balance', 'SQL', 'V1_1__add_balance.sql', ${flywayChecksum(await text('V1_1__add_balance.sql'))}, 'deploy', now(), 5, true);`;
  };
  const cases: {
    format: Format;
    dir: string;
    upTo: number;
    history: () => Promise<string> | string;
    table: string;
    pending: string[];
    needs?: PythonTool[];
    raw?: RawInputs;
  }[] = [
    {
      format: 'sql',
      dir: golang,
      upTo: 2,
      history: () => golangHistory(2),
      table: 'public.schema_migrations',
      pending: ['0010_users_email_lower_idx'],
    },
    {
      format: 'sql',
      dir: 'fixtures/sql-dbmate-ok',
      upTo: 2,
      history: () =>
        "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101120000'), ('20240102090000');",
      table: 'public.schema_migrations',
      pending: ['20240103000000_seed_nothing'],
    },
    {
      format: 'sql',
      dir: 'fixtures/sql-flyway-ok',
      upTo: 2,
      history: flyway,
      table: 'public.flyway_schema_history',
      pending: ['V2__index_name', 'V10__create_ledger'],
    },
    {
      format: 'sql',
      dir: 'fixtures/sql-diesel-ok',
      upTo: 2,
      history: () =>
        "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY, run_on timestamp NOT NULL DEFAULT now()); INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000'), ('20180118172821');",
      table: 'public.__diesel_schema_migrations',
      pending: ['20180120093000_add_email', '2018-02-01-000000_users_email_idx'],
    },
    {
      format: 'sequelize',
      dir: 'fixtures/sequelize-cli/migrations',
      upTo: 2,
      history: () => '',
      table: 'public.SequelizeMeta',
      pending: [
        '20240103120000-create-projects-and-tasks',
        '20240104120000-add-status-to-members',
        '20240105120000-add-archived-to-teams',
        '20240106120000-create-audit-log',
      ],
    },
    {
      format: 'umzug',
      dir: 'fixtures/umzug-project/migrations',
      upTo: 1,
      history: () =>
        `CREATE TABLE "SequelizeMeta" (name varchar(255) PRIMARY KEY); INSERT INTO "SequelizeMeta" VALUES ('2024.01.10T10.00.00.create-products.js');`,
      table: 'public.SequelizeMeta',
      pending: ['2024.01.11T09.30.00.add-price', '2024.01.12T14.00.00.case-insensitive-sku'],
    },
    {
      format: 'alembic',
      dir: 'fixtures/alembic-project',
      upTo: 2,
      history: () => '',
      table: 'public.alembic_version',
      // Walked parents first: the two branches of the graph, then the merge and its child.
      pending: ['2b3c4d5e6f7a', '4d5e6f7a8b9c', '5e6f7a8b9c0d'],
      needs: ['psycopg2', 'sqlalchemy', 'alembic'],
    },
    {
      format: 'command',
      dir: 'migrations',
      upTo: 2,
      history: () => '',
      table: 'public.schema_version',
      pending: ['0003_add_invoices'],
      needs: ['psycopg2'],
      raw: { 'working-directory': 'fixtures/python-runner' },
    },
  ];
  for (const c of cases) {
    pythonTest(c.needs ?? [], `${c.format}: ${c.table} in ${c.dir}`, async () => {
      const raw = c.raw ?? {};
      const url = await production(c.dir, c.format, c.upTo, await c.history(), '', server, raw);
      const report = await gate(c.dir, url, { format: c.format, only: 'target,apply', ...raw });
      expect(targetFindings(report)).toEqual([]);
      expect(report.sets[0]?.target).toMatchObject({ table: c.table, pending: c.pending, unknown: [] });
      expect(report.sets[0]?.target?.applied).toHaveLength(c.upTo);
      // The rehearsal ran the pending migrations on the target's state.
      expect(report.sets[0]?.migrations.map((m) => m.id)).toEqual(c.pending);
    });
  }
});

describe('what the gate finds', () => {
  test('nothing pending: passes, and says so', async () => {
    const url = await production(golang, 'sql', 3, golangHistory(10));
    const report = await gate(golang, url);
    expect(report.findings).toEqual([]);
    expect(report.result).toBe('passed');
    expect(report.sets[0]?.target).toMatchObject({
      applied: [expect.any(String), expect.any(String), expect.any(String)],
      pending: [],
    });
    expect(report.sets[0]?.migrations).toEqual([]);
  });

  test('a pending migration is rehearsed on the target state, with the live size of the tables it touches', async () => {
    const rows =
      "INSERT INTO users (email) SELECT 'u' || g || '@example.com' FROM generate_series(1, 5000) g; ANALYZE users;";
    const url = await production(golang, 'sql', 2, golangHistory(2), rows);
    const report = await gate(golang, url);
    expect(report.findings).toEqual([]);
    const [pending] = report.sets[0]?.migrations ?? [];
    expect(pending?.id).toBe('0010_users_email_lower_idx');
    expect(pending?.reversible).toBe('yes');
    expect(pending?.live).toEqual([{ table: 'public.users', rows: 5000, bytes: expect.any(Number) }]);
    expect(pending?.live?.[0]?.bytes).toBeGreaterThan(100_000);
  });

  test('an object made by hand on the target is drift, named as an object', async () => {
    const hotfix = 'CREATE INDEX users_created_idx ON users (created_at);';
    const url = await production(golang, 'sql', 3, golangHistory(10), hotfix);
    const report = await gate(golang, url);
    expect(targetFindings(report).map((f) => f.message)).toEqual([
      expect.stringContaining(
        "The target's schema differs from the schema this repository's history gives at the version the target has applied: index public.users_created_idx on public.users: present on target, absent in the history.",
      ),
    ]);
    expect(report.result).toBe('failed');
  });

  test('a dirty golang-migrate version: the previous deploy failed part-way', async () => {
    const url = await production(golang, 'sql', 2, golangHistory(2, true));
    const [dirty] = targetFindings(await gate(golang, url));
    expect(dirty?.message).toContain('schema_migrations marks version 2 as dirty');
    expect(dirty?.message).toContain('golang-migrate refuses to run');
  });

  test('a version the repository does not have: applied from elsewhere', async () => {
    const url = await production(golang, 'sql', 3, golangHistory(20));
    const report = await gate(golang, url);
    expect(report.sets[0]?.target?.unknown).toEqual(['20']);
    expect(targetFindings(report)[0]?.message).toContain(
      'records `20` as applied, but this repository has no such migration',
    );
  });

  test('a pending migration that sorts before one the target has applied', async () => {
    const dbmate = 'fixtures/sql-dbmate-ok';
    const url = await production(
      dbmate,
      'sql',
      1,
      "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY); INSERT INTO schema_migrations VALUES ('20240101120000'), ('20240103000000');",
      'CREATE FUNCTION posts_count() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM posts $$;',
    );
    const report = await gate(dbmate, url);
    expect(report.sets[0]?.target?.pending).toEqual(['20240102090000_posts_title_idx']);
    expect(targetFindings(report).map((f) => [f.migration, f.message.split('.')[0]])).toEqual([
      [
        '20240102090000_posts_title_idx',
        'The target: `20240102090000_posts_title_idx` is not applied there yet, but sorts before `20240103000000_seed_nothing`, which is',
      ],
    ]);
  });

  test('Flyway: an applied migration edited since (checksum), and a failed previous run', async () => {
    const flyway = 'fixtures/sql-flyway-ok';
    const url = await production(
      flyway,
      'sql',
      2,
      `CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description varchar(200) NOT NULL,
        type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by varchar(100) NOT NULL,
        installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, success boolean NOT NULL);
       INSERT INTO flyway_schema_history VALUES
         (1, '1', 'create accounts', 'SQL', 'V1__create_accounts.sql', 12345, 'deploy', now(), 5, true),
         (2, '1.1', 'add balance', 'SQL', 'V1_1__add_balance.sql', ${flywayChecksum(await readFile(fixture('sql-flyway-ok/V1_1__add_balance.sql'), 'utf8'))}, 'deploy', now(), 5, true),
         (3, '2', 'index name', 'SQL', 'V2__index_name.sql', 0, 'deploy', now(), 5, false);`,
    );
    const found = targetFindings(await gate(flyway, url));
    expect(found.map((f) => f.message)).toEqual([
      expect.stringContaining('flyway_schema_history records a failed run of `V2__index_name.sql`'),
      expect.stringContaining('`V1__create_accounts` was applied with checksum 12345'),
    ]);
    expect(found[1]?.file).toBe('fixtures/sql-flyway-ok/V1__create_accounts.sql');
  });
});

describe('the gate never writes, and never waits on production', () => {
  test('its session is read-only by its own settings, short on locks, and says who it is', async () => {
    const db = await server.createDatabase();
    const session = await TargetSession.open(db.url);
    try {
      const [settings] = await session.query<{ ro: string; lock: string; app: string }>(
        "SELECT current_setting('default_transaction_read_only') AS ro, current_setting('lock_timeout') AS lock, current_setting('application_name') AS app",
      );
      expect(settings).toEqual({ ro: 'on', lock: '2s', app: TargetApplicationName });
      await expect(session.query('CREATE TABLE written (id int)')).rejects.toThrow(
        'cannot execute CREATE TABLE in a read-only transaction',
      );
    } finally {
      await session.close();
      await db.drop();
    }
  });

  test('with a role that may only read the history table, nothing on the target changes', async () => {
    const url = await production(
      golang,
      'sql',
      2,
      golangHistory(2),
      "INSERT INTO users (email) VALUES ('a@example.com');",
    );
    const database = new URL(url).pathname.slice(1);
    await sql(
      url,
      `CREATE ROLE pgmv_gate LOGIN PASSWORD 'gate-secret';
       GRANT CONNECT ON DATABASE "${database}" TO pgmv_gate;
       GRANT USAGE ON SCHEMA public TO pgmv_gate;
       GRANT SELECT ON schema_migrations TO pgmv_gate;`,
    );
    const state = async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const schema = await readSnapshot(client, { schemas: [], tables: [] });
        const rows = await client.query(
          'SELECT (SELECT count(*) FROM users) AS users, (SELECT json_agg(s) FROM schema_migrations s) AS history',
        );
        const settings = await client.query(
          'SELECT json_agg(s ORDER BY setdatabase, setrole) AS s FROM pg_db_role_setting s',
        );
        return { schema, rows: rows.rows, settings: settings.rows };
      } finally {
        await client.end();
      }
    };
    const before = await state();
    const gateUrl = new URL(url);
    gateUrl.username = 'pgmv_gate';
    gateUrl.password = 'gate-secret';
    try {
      const report = await gate(golang, gateUrl.toString());
      expect(report.error).toBeUndefined();
      expect(report.findings).toEqual([]);
      expect(report.sets[0]?.target?.pending).toEqual(['0010_users_email_lower_idx']);
      expect(report.sets[0]?.target?.database).toContain('pgmv_gate:***@');
      expect(await state()).toEqual(before);
    } finally {
      await sql(server.adminUrl, `DROP DATABASE "${database}" WITH (FORCE)`);
      await sql(server.adminUrl, 'DROP ROLE pgmv_gate');
    }
  });

  test('a lock held on the history table is a clear "could not check" within seconds, not a hang', async () => {
    const url = await production(golang, 'sql', 2, golangHistory(2));
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN; LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE;');
      const started = Date.now();
      const report = await gate(golang, url);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(report.result).toBe('error');
      expect(report.error).toContain('holds a lock on its history table public.schema_migrations');
      expect(report.error).toContain('stopped after 2 s rather than queue behind it');
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      await holder.end();
    }
  });

  test('an unreachable target is exit 2, its password masked', async () => {
    const report = await gate(golang, 'postgresql://deploy:hunter2-secret@127.0.0.1:1/prod');
    expect(report.result).toBe('error');
    expect(report.error).toContain(
      "Could not connect to the target database 'postgresql://deploy:***@127.0.0.1:1/prod'",
    );
    expect(JSON.stringify(report)).not.toContain('hunter2-secret');
  });
});

describe('a hot standby as the target', () => {
  let primary: StartedPostgres;
  let standby: StartedPostgres;
  beforeAll(async () => {
    primary = await startPrimary();
    standby = await startStandby(primary);
  });
  afterAll(async () => {
    await standby?.stop();
    await primary?.stop();
  });

  test('the gate runs against a streaming replica, read-only', async () => {
    const url = await production(golang, 'sql', 2, golangHistory(2), '', primary);
    await caughtUp(primary, standby);
    const onStandby = new URL(url);
    onStandby.port = new URL(standby.adminUrl).port;
    const [recovery] = await sql(onStandby.toString(), 'SELECT pg_is_in_recovery() AS r');
    expect(recovery?.r).toBe(true);
    const report = await gate(golang, onStandby.toString(), {}, primary);
    expect(report.error).toBeUndefined();
    expect(report.findings).toEqual([]);
    expect(report.sets[0]?.target?.pending).toEqual(['0010_users_email_lower_idx']);
  });
});
