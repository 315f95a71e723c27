import { CannotCheck } from '../core/errors.js';
import { Inputs } from '../core/inputs.js';
import type { AppliedRow, TargetHistory, Tracking } from '../core/target.js';
import { quoted, type TargetSession } from './session.js';

/**
 * Reads the target's history table the way its tool reads it. `table` overrides the format's
 * default (`history-table`); a table that does not exist means nothing was applied yet.
 */
export async function readTargetHistory(
  session: TargetSession,
  tracking: Tracking,
  table?: string,
): Promise<TargetHistory> {
  const name = table || tracking.table;
  if (!name)
    throw new CannotCheck(
      `The deploy gate needs to know where your runner records what it ran: set '${Inputs.HistoryTable}' to that table (e.g. public.schema_version).`,
    );
  const at: Tracking = { ...tracking, table: name };
  if (!(await session.exists(name))) return { tracking: at, exists: false, rows: [] };
  const from = quoted(name);
  const what = `its history table ${name}`;
  switch (tracking.tool) {
    case 'golang-migrate': {
      const rows = await session.query<{ version: string; dirty: boolean }>(
        `SELECT version::text AS version, dirty FROM ${from}`,
        [],
        what,
      );
      const row = rows[0];
      return { tracking: at, exists: true, rows: row ? [{ key: row.version }] : [], dirty: !!row?.dirty };
    }
    case 'flyway': {
      const rows = await session.query<{
        version: string | null;
        script: string;
        type: string;
        checksum: number | null;
        success: boolean;
      }>(`SELECT version, script, type, checksum, success FROM ${from} ORDER BY installed_rank`, [], what);
      return {
        tracking: at,
        exists: true,
        rows: rows.map((r) => ({
          key: r.version ?? r.script,
          ...(r.version === null ? { repeatable: true } : {}),
          checksum: r.checksum,
          success: r.success,
          type: r.type,
          script: r.script,
        })),
      };
    }
    case 'dbmate':
    case 'diesel':
      return { tracking: at, exists: true, rows: await column(session, from, 'version', what) };
    case 'sequelize':
    case 'umzug':
      return { tracking: at, exists: true, rows: await column(session, from, 'name', what) };
    case 'alembic':
      return { tracking: at, exists: true, rows: await column(session, from, 'version_num', what) };
    case 'command':
      return {
        tracking: at,
        exists: true,
        rows: await column(session, from, await idColumn(session, name), what),
      };
  }
}

async function column(
  session: TargetSession,
  from: string,
  name: string,
  what: string,
): Promise<AppliedRow[]> {
  const rows = await session.query<{ key: string }>(
    `SELECT ${`"${name}"`}::text AS key FROM ${from}`,
    [],
    what,
  );
  return rows.map((r) => ({ key: r.key }));
}

/**
 * The column of a home-made runner's table that holds migration ids: `id`, `version`, `name` or
 * `migration`, else its first text column.
 */
async function idColumn(session: TargetSession, table: string): Promise<string> {
  const columns = await session.query<{ name: string; text: boolean }>(
    `SELECT attname AS name, atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype) AS text
       FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [quoted(table)],
  );
  const preferred = ['id', 'version', 'name', 'migration'].find((n) => columns.some((c) => c.name === n));
  const chosen = preferred ?? columns.find((c) => c.text)?.name ?? columns[0]?.name;
  if (!chosen)
    throw new CannotCheck(
      `The target's history table ${table} has no columns: set '${Inputs.HistoryTable}' to your runner's table.`,
    );
  return chosen;
}
