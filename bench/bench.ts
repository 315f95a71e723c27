// npm run bench [-- N ...]: times raw SQL (up all, down all, one connection, one transaction per
// step) and the tool on the same synthetic folder, on one server, in one process; prints medians
// and ratios, plus the cold and warm time to a ready server and the process's peak memory.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { defaultExclusions, readSnapshot } from '../src/catalog/tracker.js';
import { silentLogger } from '../src/core/logger.js';
import { startBinaries } from '../src/postgres/binaries.js';
import type { StartedPostgres } from '../src/postgres/types.js';
import { type RawInputs, resolveSettings, type Settings } from '../src/settings.js';
import { verify } from '../src/verify.js';
import { generateHistory, writeAlembicProject, writeHistory } from './generate.js';

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const counts = sizes.length ? sizes : [200, 1000];
const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const log = silentLogger;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const ms = (x: number) => `${x.toFixed(0)} ms`;

const cleanups: string[] = [];
let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 20);

/**
 * CPU time, in ms, of this process and of the server (the postmaster, its children alive now, and
 * the children it has reaped): what a run costs the machine, beside what it takes on the clock. On a
 * machine with few cores the tool's wall time cannot fall below its CPU time over the cores.
 * Linux only (/proc); undefined elsewhere.
 */
class CpuMeter {
  private constructor(private readonly postmaster: number) {}

  static async on(server: StartedPostgres): Promise<CpuMeter | undefined> {
    try {
      const client = new pg.Client({ connectionString: server.adminUrl });
      await client.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      // Read while the session lives: its parent is the postmaster.
      const backend = await CpuMeter.stat(rows[0]?.pid ?? 0);
      await client.end();
      if (!backend) throw new Error('no /proc here');
      return new CpuMeter(Number(backend[1]));
    } catch (error) {
      console.log(`CPU not measured: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** /proc/<pid>/stat from its state on (field 3 on), or undefined when it is gone. */
  private static async stat(pid: number): Promise<string[] | undefined> {
    try {
      const text = await readFile(`/proc/${pid}/stat`, 'utf8');
      return text.slice(text.lastIndexOf(')') + 2).split(' ');
    } catch {
      return undefined;
    }
  }

  /** This process's CPU and the server's, ms so far. */
  async now(): Promise<{ tool: number; server: number }> {
    const ticks = (fields: string[] | undefined, from: number, to: number) =>
      fields ? fields.slice(from, to).reduce((n, f) => n + Number(f), 0) * 10 : 0;
    // utime, stime (fields 14, 15), and cutime, cstime (16, 17) for the postmaster.
    let server = ticks(await CpuMeter.stat(this.postmaster), 11, 15);
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const fields = await CpuMeter.stat(Number(entry));
      if (fields?.[1] === String(this.postmaster)) server += ticks(fields, 11, 13);
    }
    const own = process.cpuUsage();
    return { tool: (own.user + own.system) / 1000, server };
  }

  /** Runs `work`; the CPU it cost, ms (this process and the server), or undefined without a meter. */
  static async cost(meter: CpuMeter | undefined, work: () => Promise<unknown>): Promise<number | undefined> {
    if (!meter) {
      await work();
      return undefined;
    }
    return meter.of(work);
  }

  /** The CPU `work` costs, ms: this process and the server. */
  async of(work: () => Promise<unknown>): Promise<number> {
    const before = await this.now();
    await work();
    const after = await this.now();
    return after.tool - before.tool + (after.server - before.server);
  }
}

async function rawRun(server: StartedPostgres, history: ReturnType<typeof generateHistory>): Promise<number> {
  const db = await server.createDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const started = performance.now();
  for (const m of history) {
    await client.query('BEGIN');
    await client.query(m.up);
    await client.query('COMMIT');
  }
  for (const m of [...history].reverse()) {
    await client.query('BEGIN');
    await client.query(m.down);
    await client.query('COMMIT');
  }
  const elapsed = performance.now() - started;
  await client.end();
  await db.drop();
  return elapsed;
}

/**
 * The same raw run through one psql session (every file in its own transaction): the baseline a
 * shell loop gives; undefined where there is no psql.
 */
async function psqlRun(
  server: StartedPostgres,
  history: ReturnType<typeof generateHistory>,
  tmp: string,
): Promise<number | undefined> {
  if (spawnSync('psql', ['--version']).status !== 0) return undefined;
  const script = path.join(tmp, `psql-${history.length}.sql`);
  const steps = [...history.map((m) => m.up), ...[...history].reverse().map((m) => m.down)];
  await writeFile(script, `\\set ON_ERROR_STOP on\n${steps.map((s) => `BEGIN;\n${s}\nCOMMIT;\n`).join('')}`);
  const db = await server.createDatabase();
  const started = performance.now();
  const run = spawnSync('psql', ['-X', '-q', '-f', script, db.url], { encoding: 'utf8' });
  const elapsed = performance.now() - started;
  await db.drop();
  if (run.status !== 0) throw new Error(`psql failed: ${run.stderr}`);
  return elapsed;
}

/** The locks check's findings on the last run, by rule: what a reviewer of the synthetic history would read. */
let lockRules = new Map<string, number>();

/** The tool on the bench's server (started once, kept running), as users' runs would see it. */
function verifyOn(server: StartedPostgres, settings: Settings) {
  return verify(settings, {
    log,
    emit() {},
    startPostgres: async () => ({ ...server, stop: async () => {} }),
    now: () => performance.now(),
  });
}

async function toolRun(server: StartedPostgres, dir: string, raw: RawInputs = {}): Promise<number> {
  const settings = await resolveSettings({ 'migrations-dir': dir, ...raw });
  const started = performance.now();
  const report = await verifyOn(server, settings);
  const elapsed = performance.now() - started;
  // The history is correct: only the locks check may warn (what its migrations do to existing tables).
  const other = report.findings.find((f) => f.check !== 'locks');
  if (report.result !== 'passed' || other)
    throw new Error(`the synthetic history did not pass: ${JSON.stringify(other ?? report.error)}`);
  lockRules = new Map();
  for (const f of report.findings) lockRules.set(f.rule ?? '?', (lockRules.get(f.rule ?? '?') ?? 0) + 1);
  return elapsed;
}

/**
 * The deploy gate on the largest history with the target 10 migrations behind: what it costs
 * against its parts (a raw replay of what the target has, one full catalog read of the target).
 */
async function gateBench(server: StartedPostgres, tmp: string, count: number): Promise<void> {
  const history = generateHistory(count);
  const dir = path.join(tmp, `history-${count}`);
  const at = count - 10;
  const target = await server.createDatabase();
  const client = new pg.Client({ connectionString: target.url });
  await client.connect();
  const t0 = performance.now();
  for (const m of history.slice(0, at)) await client.query(`BEGIN;${m.up};COMMIT`);
  const replay = performance.now() - t0;
  await client.query(
    `CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL); INSERT INTO schema_migrations VALUES (${at}, false)`,
  );
  const reads: number[] = [];
  let objects = 0;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    objects = Object.keys(await readSnapshot(client, defaultExclusions(['public.schema_migrations']))).length;
    reads.push(performance.now() - t);
  }
  await client.end();
  const settings = await resolveSettings({ 'migrations-dir': dir, 'target-database-url': target.url });
  const runs: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    const report = await verifyOn(server, settings);
    runs.push(performance.now() - t);
    if (report.result !== 'passed' || report.sets[0]?.target?.pending.length !== 10)
      throw new Error(`the gate did not pass: ${JSON.stringify(report.findings[0] ?? report.error)}`);
  }
  await target.drop();
  console.log('');
  console.log(
    `deploy gate, ${count} migrations, target at ${at} (${objects} objects): median ${ms(median(runs))} over ${runs.length}; its parts: raw replay of ${at} migrations ${ms(replay)}, one full catalog read of the target median ${ms(median(reads))}`,
  );
}

/** Raw up-all of `history` in a fresh database, each migration in its own transaction. */
async function rawUp(server: StartedPostgres, history: ReturnType<typeof generateHistory>): Promise<number> {
  const db = await server.createDatabase();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  const started = performance.now();
  for (const m of history) await client.query(`BEGIN;${m.up};COMMIT`);
  const elapsed = performance.now() - started;
  await client.end();
  await db.drop();
  return elapsed;
}

/**
 * A pull request that adds one migration to the history: a git repository whose main branch holds
 * `count` migrations and whose checked-out branch adds one more; the tool with `base-ref: main`
 * (scope changed, the default there) against the raw up-all of all `count + 1`.
 */
async function prBench(server: StartedPostgres, tmp: string, count: number): Promise<void> {
  const history = generateHistory(count + 1);
  const dir = path.join(tmp, `pr-${count}`);
  const git = (...args: string[]) =>
    spawnSync('git', args, {
      cwd: dir,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'bench',
        GIT_AUTHOR_EMAIL: 'bench@example.invalid',
        GIT_COMMITTER_NAME: 'bench',
        GIT_COMMITTER_EMAIL: 'bench@example.invalid',
        GIT_CONFIG_NOSYSTEM: '1',
      },
    });
  const migrations = path.join(dir, 'migrations');
  await writeHistory(migrations, history.slice(0, count));
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-q', '-m', 'base');
  git('checkout', '-q', '-b', 'pr');
  await writeHistory(migrations, history.slice(count));
  git('add', '-A');
  git('commit', '-q', '-m', 'one more');
  const settings = await resolveSettings({ 'migrations-dir': 'migrations', 'base-ref': 'main' }, dir);
  const raw: number[] = [];
  const tool: number[] = [];
  for (let i = 0; i < repeats; i++) {
    raw.push(await rawUp(server, history));
    const t = performance.now();
    const report = await verifyOn(server, settings);
    tool.push(performance.now() - t);
    const other = report.findings.find((f) => f.check !== 'locks');
    if (report.result !== 'passed' || other || report.sets[0]?.migrations.length !== 1)
      throw new Error(`the pull request did not pass: ${JSON.stringify(other ?? report.error)}`);
  }
  const r = median(raw);
  const v = median(tool);
  console.log('');
  console.log(
    `pull request adding 1 migration to ${count} (scope changed): median ${ms(v)} over ${tool.length}; raw up-all of the ${count + 1} migrations median ${ms(r)}; ratio ${(v / r).toFixed(2)}x`,
  );
}

/**
 * Alembic: a generated linear history of 60 revisions (a table and an index each), the tool against
 * raw `alembic upgrade head` + `alembic downgrade base` on the same server; skipped, saying why,
 * where alembic does not run.
 */
async function alembicBench(server: StartedPostgres, tmp: string): Promise<void> {
  const count = 60;
  const dir = path.join(tmp, 'alembic');
  await writeAlembicProject(dir, count);
  const alembic = (args: string, url: string) =>
    spawnSync('sh', ['-c', `alembic ${args}`], {
      cwd: dir,
      env: { ...process.env, DATABASE_URL: url },
      encoding: 'utf8',
    });
  const probe = spawnSync('sh', ['-c', 'alembic --version'], { encoding: 'utf8' });
  console.log('');
  if (probe.status !== 0) {
    console.log(
      `alembic, ${count} revisions: skipped (alembic does not run here: ${(probe.stderr || probe.error?.message || '').trim().split('\n').at(-1)}; Debian: apt-get install alembic python3-psycopg2)`,
    );
    return;
  }
  const settings = await resolveSettings({ 'migrations-dir': dir, format: 'alembic' });
  const raw: number[] = [];
  const tool: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const db = await server.createDatabase();
    const t = performance.now();
    const up = alembic('upgrade head', db.url);
    const down = alembic('downgrade base', db.url);
    raw.push(performance.now() - t);
    await db.drop();
    if (up.status !== 0 || down.status !== 0)
      throw new Error(`raw alembic failed: ${up.stderr}${down.stderr}`);
    const s = performance.now();
    const report = await verifyOn(server, settings);
    tool.push(performance.now() - s);
    if (report.result !== 'passed' || report.findings.some((f) => f.check !== 'locks'))
      throw new Error(
        `the alembic history did not pass: ${JSON.stringify(report.findings[0] ?? report.error)}`,
      );
  }
  const single: number[] = [];
  const one = await resolveSettings({ 'migrations-dir': dir, format: 'alembic', jobs: '1' });
  for (let i = 0; i < repeats; i++) {
    const s = performance.now();
    await verifyOn(server, one);
    single.push(performance.now() - s);
  }
  const r = median(raw);
  const v = median(tool);
  console.log(
    `alembic, ${count} revisions (scope all): tool median ${ms(v)} over ${tool.length}; raw upgrade head + downgrade base median ${ms(r)}; ratio ${(v / r).toFixed(1)}x; on one database (jobs 1) median ${ms(median(single))}, ${(median(single) / r).toFixed(1)}x`,
  );
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'pgmv-bench-'));
  // As root the server runs as another user, who must be able to enter this directory.
  await chmod(tmp, 0o755);
  try {
    // Server start: cold (initdb into an empty cache) and warm (copy of the cached cluster).
    // Where a default run keeps clusters (a tmpfs when there is one), but empty, so the first start is cold.
    const coldRoot = await mkdtemp(
      path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'pgmv-bench-'),
    );
    await chmod(coldRoot, 0o755);
    cleanups.push(coldRoot);
    const env = { ...process.env, PG_MIGRATE_VERIFY_TMPDIR: coldRoot };
    let t = performance.now();
    const cold = await startBinaries({ log, env });
    const coldMs = performance.now() - t;
    await cold.stop();
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) {
      t = performance.now();
      const s = await startBinaries({ log, env });
      warm.push(performance.now() - t);
      await s.stop();
    }
    const server = await startBinaries({ log });
    const meter = await CpuMeter.on(server);
    console.log(
      `PostgreSQL ${server.version} (${server.provider}), Node ${process.versions.node}, ${os.cpus().length} cores`,
    );
    console.log(
      `ready server: cold ${ms(coldMs)} (initdb), warm median ${ms(median(warm))} over ${warm.length}`,
    );
    console.log('');
    console.log(
      'migrations | raw up+down (median) | tool (median) | ratio tool/raw | tool without lock tracing | tracing costs (paired median)',
    );
    console.log(
      '-----------|----------------------|---------------|----------------|---------------------------|------------------------------',
    );
    try {
      const rawMedians = new Map<number, number>();
      for (const count of counts) {
        const history = generateHistory(count);
        const dir = path.join(tmp, `history-${count}`);
        await writeHistory(dir, history);
        const raw: number[] = [];
        const psql: number[] = [];
        const tool: number[] = [];
        const untraced: number[] = [];
        // Each traced run against the untraced run beside it: on a shared machine the speed drifts
        // over minutes, and a paired ratio cancels the drift that two separate medians keep.
        const paired: number[] = [];
        // CPU of the raw run and of the traced tool run (this process and the server), ms.
        const rawCpu: number[] = [];
        const toolCpu: number[] = [];
        let rules = new Map<string, number>();
        for (let i = 0; i < repeats; i++) {
          const rawCost = await CpuMeter.cost(meter, async () => raw.push(await rawRun(server, history)));
          if (rawCost !== undefined) rawCpu.push(rawCost);
          const viaPsql = await psqlRun(server, history, tmp);
          if (viaPsql !== undefined) psql.push(viaPsql);
          // Alternate which goes first, so that neither always runs right after the other.
          const traced = async () => {
            const cost = await CpuMeter.cost(meter, async () => tool.push(await toolRun(server, dir)));
            if (cost !== undefined) toolCpu.push(cost);
            rules = lockRules;
          };
          const plain = async () => {
            untraced.push(await toolRun(server, dir, { skip: 'locks' }));
          };
          for (const run of i % 2 ? [plain, traced] : [traced, plain]) await run();
          paired.push((tool.at(-1) as number) / (untraced.at(-1) as number) - 1);
        }
        const r = median(raw);
        const v = median(tool);
        const u = median(untraced);
        rawMedians.set(count, r);
        console.log(
          `${String(count).padStart(10)} | ${ms(r).padStart(20)} | ${ms(v).padStart(13)} | ${(v / r).toFixed(2).padStart(13)}x | ${ms(u).padStart(25)} | ${`${(median(paired) * 100).toFixed(1)}%`.padStart(12)}`,
        );
        console.log(
          `${''.padStart(10)}   tracing, each traced run against the untraced one beside it: ${paired.map((p) => `${(p * 100).toFixed(0)}%`).join(', ')} (median ${(median(paired) * 100).toFixed(1)}%; the medians above differ by ${(((v - u) / u) * 100).toFixed(1)}%)`,
        );
        console.log(
          `${''.padStart(10)}   ${psql.length ? `the same up+down through one psql session: median ${ms(median(psql))}; tool/psql ${(v / median(psql)).toFixed(2)}x` : 'no psql here: the psql baseline was not measured'}`,
        );
        // The machine's speed drifts over minutes (a shared VM): each tool run against the raw
        // runs of its own round, seconds apart, says the ratio with that drift cancelled.
        const rounds = (base: number[]) => {
          const ratios = tool.map((t, i) => t / (base[i] as number));
          return `${ratios.map((x) => `${x.toFixed(2)}x`).join(', ')} (median ${median(ratios).toFixed(2)}x)`;
        };
        console.log(
          `${''.padStart(10)}   each tool run against the raw run of its round: ${rounds(raw)}${psql.length === tool.length ? `; against psql: ${rounds(psql)}` : ''}`,
        );
        if (rawCpu.length && toolCpu.length) {
          const cpu = median(toolCpu) / median(rawCpu);
          const cores = os.cpus().length;
          console.log(
            `${''.padStart(10)}   CPU (this process + the server): raw median ${ms(median(rawCpu))}, tool median ${ms(median(toolCpu))}, ${cpu.toFixed(2)}x; on ${cores} cores the tool's wall time cannot fall below ~${(cpu / cores).toFixed(2)}x raw`,
          );
        }
        console.log(
          `${''.padStart(10)}   locks findings on the synthetic history: ${[...rules].map(([rule, n]) => `${rule} ${n}`).join(', ') || 'none'}`,
        );
      }
      const largest = Math.max(...counts);
      // The walk on one database, against the ranges side by side that `jobs: auto` gives here.
      const single: number[] = [];
      for (let i = 0; i < repeats; i++)
        single.push(await toolRun(server, path.join(tmp, `history-${largest}`), { jobs: '1' }));
      const rawLargest = rawMedians.get(largest) as number;
      console.log(
        `${''.padStart(10)}   ${largest} on one database (jobs 1; the tool above: jobs auto = ${(await resolveSettings({ 'migrations-dir': path.join(tmp, `history-${largest}`) })).jobs}): median ${ms(median(single))} over ${single.length}; ratio ${(median(single) / rawLargest).toFixed(2)}x`,
      );
      await prBench(server, tmp, largest);
      await alembicBench(server, tmp);
      await gateBench(server, tmp, largest);

      // Peak memory of the tool alone: the bundled CLI (build it first) in a child process.
      const child = spawnSync(
        process.execPath,
        [
          path.join(path.dirname(new URL(import.meta.url).pathname), 'rss.mjs'),
          path.join(tmp, `history-${largest}`),
          '--database-url',
          server.adminUrl,
          '-q',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'ignore', 'ignore', 'pipe'] },
      );
      const { maxRssKb } = JSON.parse(String(child.output[3] ?? '{}').trim() || '{}') as {
        maxRssKb?: number;
      };
      console.log('');
      console.log(
        `peak RSS of the tool on ${largest} migrations (dist/cli in a child process): ${((maxRssKb ?? 0) / 1024).toFixed(0)} MB`,
      );

      // A full catalog snapshot of a schema with 500 tables (plus their columns, indexes, views, ...).
      const db = await server.createDatabase();
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      // 3 of every 8 synthetic migrations create a table: 1334 of them make 500 tables.
      const big = generateHistory(1334);
      for (const m of big) await client.query(m.up);
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
      );
      const snaps: number[] = [];
      let objects = 0;
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        objects = Object.keys(await readSnapshot(client, defaultExclusions())).length;
        snaps.push(performance.now() - t0);
      }
      await client.end();
      await db.drop();
      console.log(
        `full snapshot of ${rows[0]?.n} tables (${objects} objects): median ${ms(median(snaps))} over ${snaps.length}`,
      );
    } finally {
      await server.stop();
    }
    console.log('');
    console.log(
      `peak RSS of this bench process (raw runs included): ${(peakRss / 1024 / 1024).toFixed(0)} MB`,
    );
  } finally {
    clearInterval(sampler);
    for (const dir of [tmp, ...cleanups]) await rm(dir, { recursive: true, force: true });
  }
}

await main();
