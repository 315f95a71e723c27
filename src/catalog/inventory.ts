import type pg from 'pg';
import { BookkeepingSchema } from '../migrations/runner.js';

const Catalogs = [
  'pg_namespace',
  'pg_class',
  'pg_type',
  'pg_proc',
  'pg_constraint',
  'pg_trigger',
  'pg_policy',
  'pg_extension',
  'pg_event_trigger',
  'pg_collation',
  'pg_operator',
  'pg_opclass',
  'pg_opfamily',
  'pg_cast',
  'pg_conversion',
  'pg_ts_config',
  'pg_ts_dict',
  'pg_ts_parser',
  'pg_ts_template',
  'pg_foreign_data_wrapper',
  'pg_foreign_server',
  'pg_publication',
  'pg_rewrite',
  'pg_attrdef',
  'pg_language',
  'pg_statistic_ext',
  'pg_transform',
  'pg_am',
];

// Objects that live and die with another (indexes, row and array types, column defaults, view rules,
// extension members) are left out: a leftover parent names them all.
const InventorySql = `
WITH objs AS (
  ${Catalogs.map((c) => `SELECT '${c}'::regclass AS classid, oid AS objid FROM ${c}`).join('\n  UNION ALL ')}
)
SELECT pg_describe_object(o.classid, o.objid, 0) AS description
FROM objs o
WHERE NOT EXISTS (
    SELECT 1 FROM pg_depend d
    WHERE d.classid = o.classid AND d.objid = o.objid AND d.objsubid = 0 AND d.deptype IN ('i', 'a', 'e')
  )
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend d JOIN pg_namespace n ON n.oid = d.refobjid
    WHERE d.classid = o.classid AND d.objid = o.objid AND d.refclassid = 'pg_namespace'::regclass
      AND (n.nspname = $1 OR n.nspname LIKE 'pg\\_temp\\_%' OR n.nspname LIKE 'pg\\_toast\\_temp\\_%')
  )
  AND NOT (o.classid = 'pg_namespace'::regclass AND o.objid IN (
    SELECT oid FROM pg_namespace WHERE nspname = $1 OR nspname LIKE 'pg\\_temp\\_%' OR nspname LIKE 'pg\\_toast\\_temp\\_%'))
`;

/**
 * Every top-level object in the database as Postgres describes it (`table users`, `type mood`),
 * system ones included, so two inventories can be compared by set difference.
 */
export async function readInventory(client: pg.Client): Promise<Set<string>> {
  const { rows } = await client.query<{ description: string | null }>(InventorySql, [BookkeepingSchema]);
  return new Set(rows.map((r) => r.description).filter((d): d is string => !!d));
}

/** Objects present in `after` but not in `before`, and the reverse, each sorted. */
export function diffInventories(
  before: Set<string>,
  after: Set<string>,
): { added: string[]; removed: string[] } {
  return {
    added: [...after].filter((d) => !before.has(d)).sort(),
    removed: [...before].filter((d) => !after.has(d)).sort(),
  };
}
