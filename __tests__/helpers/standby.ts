import { execFileSync } from 'node:child_process';
import { appendFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startBinaries } from '../../src/postgres/binaries.js';
import type { StartedPostgres } from '../../src/postgres/types.js';
import { quietLog } from './postgres.js';

/** What a primary needs so that a standby can stream from it (and what the standby must match). */
export const ReplicationSettings = { wal_level: 'replica', max_wal_senders: '4', hot_standby: 'on' };

/** A primary the tests start: a server whose WAL a standby can stream. */
export function startPrimary(): Promise<StartedPostgres> {
  return startBinaries({ log: quietLog, settings: ReplicationSettings });
}

/**
 * A real hot standby of `primary`, streaming from it: a base backup taken through the SQL
 * interface (pg_backup_start / pg_backup_stop, so no pg_basebackup is needed), `standby.signal`
 * and `primary_conninfo`, started as its own server. Returns once it accepts read-only sessions.
 */
export async function startStandby(primary: StartedPostgres): Promise<StartedPostgres> {
  const admin = new pg.Client({ connectionString: primary.adminUrl });
  admin.on('error', () => {});
  await admin.connect();
  const copy = await mkdtemp(path.join(os.tmpdir(), 'pgmv-standby-'));
  try {
    const data =
      (await admin.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]?.d ?? '';
    const modern = primary.major >= 15;
    await admin.query(
      modern
        ? "SELECT pg_backup_start('pgmv-standby', true)"
        : "SELECT pg_start_backup('pgmv-standby', true, false)",
    );
    const target = path.join(copy, 'data');
    execFileSync('cp', ['-a', data, target]);
    const { rows } = await admin.query<{ labelfile: string }>(
      modern
        ? 'SELECT labelfile FROM pg_backup_stop(false)'
        : 'SELECT labelfile FROM pg_stop_backup(false, false)',
    );
    await writeFile(path.join(target, 'backup_label'), rows[0]?.labelfile ?? '');
    await writeFile(path.join(target, 'standby.signal'), '');
    const port = new URL(primary.adminUrl).port;
    await appendFile(
      path.join(target, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${port} user=postgres application_name=pgmv-standby'\n`,
    );
    // The server runs as the data directory's owner: the files written here must be its own.
    const { uid, gid } = await stat(data);
    execFileSync('chown', ['-R', `${uid}:${gid}`, target]);
    const standby = await startBinaries({
      log: quietLog,
      settings: ReplicationSettings,
      dataDirectory: target,
    });
    await waitStreaming(admin);
    return standby;
  } finally {
    await admin.end().catch(() => {});
    await rm(copy, { recursive: true, force: true });
  }
}

/** Until the primary sees the standby streaming (so what the primary commits reaches it). */
async function waitStreaming(primary: pg.Client): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await primary.query(
      "SELECT 1 FROM pg_stat_replication WHERE application_name = 'pgmv-standby' AND state = 'streaming'",
    );
    if (rows.length) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the standby did not start streaming from the primary within 10 s');
}

/** Waits until the standby has replayed everything the primary has written so far. */
export async function caughtUp(primary: StartedPostgres, standby: StartedPostgres): Promise<void> {
  const read = async (url: string, sql: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<{ lsn: string }>(sql)).rows[0]?.lsn ?? '';
    } finally {
      await c.end();
    }
  };
  const want = await read(primary.adminUrl, 'SELECT pg_current_wal_lsn()::text AS lsn');
  for (let i = 0; i < 200; i++) {
    const behind = await read(
      standby.adminUrl,
      `SELECT (pg_wal_lsn_diff('${want}', pg_last_wal_replay_lsn()) > 0)::text AS lsn`,
    );
    if (behind === 'false') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the standby did not catch up with the primary within 10 s');
}
