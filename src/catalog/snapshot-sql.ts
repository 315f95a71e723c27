import { BookkeepingSchema } from '../core/bookkeeping.js';

/**
 * How the schema is read from pg_catalog: one row per object,
 * (obj_class, obj_oid, root_class, root_oid, key, kind, name, parent, props).
 *
 * A "root" owns a family of objects that are read and replaced together: a relation (with its
 * columns, constraints, indexes, triggers, policies and rules), a type (with domain constraints),
 * a function, a schema, an extension, an event trigger.
 *
 * - rootsSql() reads and clears the log our event triggers keep, and maps each touched object to its
 *   root. Dropped objects come back as they are (their catalog rows are gone; the caller knows their
 *   roots from earlier reads).
 * - DependentsSql finds the roots of what depends on given objects, one level down: after a rename,
 *   the foreign keys and views that name the renamed table read differently.
 * - familySql(class) reads the families of the given roots ($1) of one class: small statements,
 *   each an index lookup per root, run only for the classes a step touched.
 * - familySql('all') reads everything in one statement.
 *
 * Compare catalogs, not pg_dump text: dump order and layout change between server versions.
 * $2: schemas to leave out (our bookkeeping); $3: `schema.table` names to leave out (history tables).
 */
export type RootClass =
  | 'pg_class'
  | 'pg_type'
  | 'pg_proc'
  | 'pg_namespace'
  | 'pg_extension'
  | 'pg_event_trigger';
export const RootClasses: readonly RootClass[] = [
  'pg_class',
  'pg_type',
  'pg_proc',
  'pg_namespace',
  'pg_extension',
  'pg_event_trigger',
];

/** CTEs that map each object in `expanded(classid, objid)` to the root whose family holds it. */
const RootMapping = `
rel_roots(oid) AS (
  SELECT CASE WHEN c.relkind IN ('i', 'I') THEN i.indrelid ELSE c.oid END
    FROM expanded e JOIN pg_class c ON e.classid = 'pg_class'::regclass AND c.oid = e.objid
    LEFT JOIN pg_index i ON i.indexrelid = c.oid
    WHERE c.relkind <> 'c'
  UNION SELECT co.conrelid FROM expanded e JOIN pg_constraint co ON e.classid = 'pg_constraint'::regclass AND co.oid = e.objid WHERE co.conrelid <> 0
  UNION SELECT tg.tgrelid FROM expanded e JOIN pg_trigger tg ON e.classid = 'pg_trigger'::regclass AND tg.oid = e.objid
  UNION SELECT po.polrelid FROM expanded e JOIN pg_policy po ON e.classid = 'pg_policy'::regclass AND po.oid = e.objid
  UNION SELECT ru.ev_class FROM expanded e JOIN pg_rewrite ru ON e.classid = 'pg_rewrite'::regclass AND ru.oid = e.objid
  UNION SELECT ad.adrelid FROM expanded e JOIN pg_attrdef ad ON e.classid = 'pg_attrdef'::regclass AND ad.oid = e.objid
  UNION SELECT t.typrelid FROM expanded e JOIN pg_type t ON e.classid = 'pg_type'::regclass AND t.oid = e.objid
    JOIN pg_class c ON c.oid = t.typrelid WHERE c.relkind <> 'c'
),
type_roots(oid) AS (
  SELECT x.oid FROM (
    SELECT CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END AS oid
      FROM expanded e JOIN pg_type t ON e.classid = 'pg_type'::regclass AND t.oid = e.objid
    UNION SELECT c.reltype FROM expanded e JOIN pg_class c ON e.classid = 'pg_class'::regclass AND c.oid = e.objid WHERE c.relkind = 'c'
    UNION SELECT co.contypid FROM expanded e JOIN pg_constraint co ON e.classid = 'pg_constraint'::regclass AND co.oid = e.objid WHERE co.contypid <> 0
  ) x
  -- A table's row type is read with the table.
  WHERE NOT EXISTS (SELECT 1 FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid WHERE t.oid = x.oid AND c.relkind <> 'c')
),
func_roots(oid) AS (SELECT objid FROM expanded WHERE classid = 'pg_proc'::regclass),
ns_roots(oid) AS (SELECT objid FROM expanded WHERE classid = 'pg_namespace'::regclass),
ext_roots(oid) AS (SELECT objid FROM expanded WHERE classid = 'pg_extension'::regclass),
evt_roots(oid) AS (SELECT objid FROM expanded WHERE classid = 'pg_event_trigger'::regclass)
`;

const RootRows = `
SELECT 'pg_class' AS root_class, oid AS root_oid, false AS dropped FROM rel_roots WHERE oid IS NOT NULL
UNION SELECT 'pg_type', oid, false FROM type_roots WHERE oid IS NOT NULL
UNION SELECT 'pg_proc', oid, false FROM func_roots WHERE oid IS NOT NULL
UNION SELECT 'pg_namespace', oid, false FROM ns_roots WHERE oid IS NOT NULL
UNION SELECT 'pg_extension', oid, false FROM ext_roots WHERE oid IS NOT NULL
UNION SELECT 'pg_event_trigger', oid, false FROM evt_roots WHERE oid IS NOT NULL
`;

/**
 * Reads and clears the log: roots of the objects the step touched, and the objects it dropped
 * (`rider` null). With `rider`, its CTEs run in the same statement and its rows (one jsonb column
 * `rider`) come back beside the roots: one round trip for both.
 */
export function rootsSql(rider?: { ctes?: string; select: string }): string {
  return `
WITH ${rider?.ctes ? `${rider.ctes},` : ''}
log AS (DELETE FROM ${BookkeepingSchema}.ddl_log RETURNING classid, objid, dropped),
expanded AS (SELECT classid::regclass::oid AS classid, objid FROM log WHERE NOT dropped),
${RootMapping}
SELECT root_class, root_oid, dropped, NULL::jsonb AS rider FROM (
${RootRows}
UNION SELECT classid, objid, true FROM log WHERE dropped
) roots
${rider ? `UNION ALL SELECT NULL, NULL, NULL, rider FROM (${rider.select}) riding` : ''}
`;
}

/**
 * Roots of the objects that depend on the given ones ($1 catalogs, $2 oids), one level down: after a
 * rename, the foreign keys, views, defaults and triggers that name the renamed object read differently.
 */
export const DependentsSql = `
WITH given AS (SELECT c::regclass::oid AS classid, objid FROM unnest($1::text[], $2::oid[]) AS g(c, objid)),
expanded AS (
  SELECT d.classid, d.objid FROM given g
  CROSS JOIN LATERAL (SELECT classid, objid FROM pg_depend d
                      WHERE d.refclassid = g.classid AND d.refobjid = g.objid AND d.deptype IN ('n', 'a', 'i') OFFSET 0) d
),
${RootMapping}
${RootRows}
`;

/** The comment on an object (a join by index, not the per-row SQL function obj_description). */
const comment = (oid: string, catalog: string, subid = '0') =>
  `(SELECT d.description FROM pg_description d WHERE d.objoid = ${oid} AND d.classoid = '${catalog}'::regclass AND d.objsubid = ${subid})`;

type Helpers = { from: (catalog: string, alias: string) => string; scoped: (oid: string) => string };

const Branches: [RootClass, (h: Helpers) => string][] = [
  [
    'pg_namespace',
    (h) => `
SELECT 'pg_namespace', n.oid, 'pg_namespace', n.oid, 'schema:' || n.q, 'schema', n.q, NULL,
  jsonb_build_object('comment', ${comment('n.oid', 'pg_namespace')})
FROM nsp n
WHERE NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_namespace'::regclass AND m.objid = n.oid AND m.deptype = 'e')
  ${h.scoped('n.oid')}
`,
  ],
  [
    'pg_class',
    (_h) => `
SELECT 'pg_class', r.oid, 'pg_class', r.oid, k.kind || ':' || r.qn, k.kind, r.qn, NULL,
  CASE
    WHEN r.relkind = 'S' THEN jsonb_build_object(
      'type', format_type(s.seqtypid, NULL), 'start', s.seqstart::text, 'increment', s.seqincrement::text,
      'min', s.seqmin::text, 'max', s.seqmax::text, 'cache', s.seqcache::text, 'cycle', s.seqcycle,
      'ownedBy', (SELECT quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) || '.' || quote_ident(a.attname)
                  FROM pg_depend d JOIN pg_class tc ON tc.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
                  JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
                    AND d.deptype IN ('a', 'i') LIMIT 1),
      'comment', ${comment('r.oid', 'pg_class')})
    WHEN r.relkind IN ('v', 'm') THEN jsonb_build_object(
      'definition', pg_get_viewdef(r.oid, true),
      'options', (SELECT jsonb_agg(o ORDER BY o) FROM unnest(c.reloptions) o),
      'columns', (SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'comment', ${comment('r.oid', 'pg_class')})
    ELSE jsonb_build_object(
      'persistence', CASE c.relpersistence WHEN 'u' THEN 'unlogged' WHEN 't' THEN 'temporary' ELSE 'permanent' END,
      'partitionKey', CASE WHEN r.relkind = 'p' THEN pg_get_partkeydef(r.oid) END,
      'inherits', (SELECT jsonb_agg(quote_ident(pn.nspname) || '.' || quote_ident(pc.relname) ORDER BY i.inhseqno)
                   FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                   WHERE i.inhrelid = r.oid),
      'bound', pg_get_expr(c.relpartbound, c.oid),
      'options', (SELECT jsonb_agg(o ORDER BY o) FROM unnest(c.reloptions) o),
      'rowSecurity', c.relrowsecurity,
      'forceRowSecurity', c.relforcerowsecurity,
      'replicaIdentity', CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' ELSE 'index' END,
      'columns', (SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'comment', ${comment('r.oid', 'pg_class')})
  END
FROM rels r JOIN pg_class c ON c.oid = r.oid
LEFT JOIN pg_sequence s ON s.seqrelid = r.oid
CROSS JOIN LATERAL (SELECT CASE r.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                                          WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind) k
`,
  ],
  [
    'pg_class',
    (_h) => `
SELECT 'pg_class', r.oid, 'pg_class', r.oid, 'column:' || r.qn || '.' || quote_ident(a.attname), 'column',
  r.qn || '.' || quote_ident(a.attname), r.qn,
  jsonb_build_object(
    'type', format_type(a.atttypid, a.atttypmod),
    'notNull', a.attnotnull,
    -- Defaults cannot refer to columns, so deparse them without the relation: with it, every call
    -- builds a context from all the table's columns, O(columns^2) for a wide table.
    'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, 0) END,
    'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) || CASE a.attgenerated WHEN 's' THEN ' stored' ELSE ' virtual' END END,
    'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
    'collation', CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,
    'comment', ${comment('r.oid', 'pg_class', 'a.attnum')})
FROM rels r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f')
`,
  ],
  [
    'pg_class',
    (_h) => `
SELECT 'pg_constraint', co.oid, 'pg_class', r.oid, 'constraint:' || r.qn || '.' || quote_ident(co.conname), 'constraint',
  quote_ident(co.conname), r.qn,
  jsonb_build_object('type', CASE co.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key' WHEN 'u' THEN 'unique'
                                              WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' ELSE co.contype::text END,
                     'definition', pg_get_constraintdef(co.oid), 'validated', co.convalidated,
                     'comment', ${comment('co.oid', 'pg_constraint')})
FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
WHERE co.contype::text <> 'n'
`,
  ],
  [
    'pg_class',
    (_h) => `
SELECT 'pg_class', ic.oid, 'pg_class', r.oid, 'index:' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname), 'index',
  quote_ident(n.nspname) || '.' || quote_ident(ic.relname), r.qn,
  jsonb_build_object('definition', pg_get_indexdef(ic.oid), 'valid', i.indisvalid, 'comment', ${comment('ic.oid', 'pg_class')})
FROM rels r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
`,
  ],
  [
    'pg_class',
    (_h) => `
SELECT 'pg_trigger', tg.oid, 'pg_class', r.oid, 'trigger:' || r.qn || '.' || quote_ident(tg.tgname), 'trigger',
  quote_ident(tg.tgname), r.qn,
  jsonb_build_object('definition', pg_get_triggerdef(tg.oid), 'enabled', tg.tgenabled::text, 'comment', ${comment('tg.oid', 'pg_trigger')})
FROM rels r JOIN pg_trigger tg ON tg.tgrelid = r.oid
WHERE NOT tg.tgisinternal
`,
  ],
  [
    'pg_class',
    (_h) => `
SELECT 'pg_policy', po.oid, 'pg_class', r.oid, 'policy:' || r.qn || '.' || quote_ident(po.polname), 'policy',
  quote_ident(po.polname), r.qn,
  jsonb_build_object(
    'command', CASE po.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert' WHEN 'w' THEN 'update' WHEN 'd' THEN 'delete' ELSE 'all' END,
    'permissive', po.polpermissive,
    'roles', (SELECT jsonb_agg(CASE WHEN ro = 0 THEN 'public' ELSE pg_get_userbyid(ro)::text END ORDER BY 1) FROM unnest(po.polroles) ro),
    'using', pg_get_expr(po.polqual, po.polrelid),
    'check', pg_get_expr(po.polwithcheck, po.polrelid),
    'comment', ${comment('po.oid', 'pg_policy')})
FROM rels r JOIN pg_policy po ON po.polrelid = r.oid
`,
  ],
  [
    'pg_class',
    (_h) => `
SELECT 'pg_rewrite', ru.oid, 'pg_class', r.oid, 'rule:' || r.qn || '.' || quote_ident(ru.rulename), 'rule',
  quote_ident(ru.rulename), r.qn,
  jsonb_build_object('definition', pg_get_ruledef(ru.oid), 'enabled', ru.ev_enabled::text, 'comment', ${comment('ru.oid', 'pg_rewrite')})
FROM rels r JOIN pg_rewrite ru ON ru.ev_class = r.oid
WHERE ru.rulename <> '_RETURN'
`,
  ],
  [
    'pg_type',
    (_h) => `
SELECT 'pg_type', ty.oid, 'pg_type', ty.oid, k.kind || ':' || ty.qt, k.kind, ty.qt, NULL,
  CASE ty.typtype
    WHEN 'e' THEN jsonb_build_object('labels', (SELECT jsonb_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = ty.oid))
    WHEN 'd' THEN jsonb_build_object('baseType', format_type(t.typbasetype, t.typtypmod), 'notNull', t.typnotnull, 'default', t.typdefault,
                                     'collation', CASE WHEN t.typcollation <> bt.typcollation THEN t.typcollation::regcollation::text END)
    WHEN 'c' THEN jsonb_build_object('attributes', (SELECT jsonb_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
                                                    FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped))
    ELSE jsonb_build_object('subtype', format_type(rg.rngsubtype, NULL),
                            'collation', CASE WHEN rg.rngcollation <> 0 THEN rg.rngcollation::regcollation::text END,
                            'canonical', NULLIF(rg.rngcanonical::regproc::text, '-'), 'subdiff', NULLIF(rg.rngsubdiff::regproc::text, '-'))
  END || jsonb_build_object('comment', ${comment('ty.oid', 'pg_type')})
FROM types ty JOIN pg_type t ON t.oid = ty.oid
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_range rg ON rg.rngtypid = ty.oid
CROSS JOIN LATERAL (SELECT CASE ty.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite type' ELSE 'range type' END AS kind) k
`,
  ],
  [
    'pg_type',
    (_h) => `
SELECT 'pg_constraint', co.oid, 'pg_type', ty.oid, 'constraint:' || ty.qt || '.' || quote_ident(co.conname), 'constraint',
  quote_ident(co.conname), ty.qt,
  jsonb_build_object('type', 'check', 'definition', pg_get_constraintdef(co.oid), 'validated', co.convalidated,
                     'comment', ${comment('co.oid', 'pg_constraint')})
FROM types ty JOIN pg_constraint co ON co.contypid = ty.oid
WHERE co.contype::text <> 'n'
`,
  ],
  [
    'pg_proc',
    (h) => `
SELECT 'pg_proc', p.oid, 'pg_proc', p.oid, k.kind || ':' || p.qf, k.kind, p.qf, NULL,
  jsonb_build_object(
    'arguments', pg_get_function_arguments(p.oid),
    'returns', pg_get_function_result(p.oid),
    'language', l.lanname,
    'volatility', CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' ELSE 'volatile' END,
    'strict', p.proisstrict,
    'security', CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END,
    'leakproof', p.proleakproof,
    'parallel', CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted' ELSE 'unsafe' END,
    'config', to_jsonb(p.proconfig),
    'body', CASE WHEN p.prokind = 'a' THEN NULL WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END,
    'comment', ${comment('p.oid', 'pg_proc')})
FROM (
  SELECT p.*, nsp.q || '.' || quote_ident(p.proname) || '(' || oidvectortypes(p.proargtypes) || ')' AS qf
  FROM ${h.from('pg_proc', 'p')} JOIN nsp ON nsp.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_proc'::regclass AND m.objid = p.oid AND m.deptype = 'e')
    -- Range and multirange constructors come and go with their type.
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'i')
) p
JOIN pg_language l ON l.oid = p.prolang
CROSS JOIN LATERAL (SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window function' ELSE 'function' END AS kind) k
`,
  ],
  [
    'pg_extension',
    (h) => `
SELECT 'pg_extension', e.oid, 'pg_extension', e.oid, 'extension:' || quote_ident(e.extname), 'extension', quote_ident(e.extname), NULL,
  jsonb_build_object('version', e.extversion, 'schema', n.nspname)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE true ${h.scoped('e.oid')}
`,
  ],
  [
    'pg_event_trigger',
    (h) => `
SELECT 'pg_event_trigger', ev.oid, 'pg_event_trigger', ev.oid, 'event trigger:' || quote_ident(ev.evtname), 'event trigger',
  quote_ident(ev.evtname), NULL,
  jsonb_build_object('event', ev.evtevent, 'function', ev.evtfoid::regproc::text, 'tags', to_jsonb(ev.evttags),
                     'enabled', ev.evtenabled::text, 'comment', ${comment('ev.oid', 'pg_event_trigger')})
FROM pg_event_trigger ev
WHERE ev.evtname NOT LIKE '\\_pg\\_migrate\\_verify%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_event_trigger'::regclass AND m.objid = ev.oid AND m.deptype = 'e')
  ${h.scoped('ev.oid')}
`,
  ],
];

export function familySql(which: RootClass | 'all'): string {
  const full = which === 'all';
  const scoped = (oid: string) => (full ? '' : `AND ${oid} = ANY($1::oid[])`);
  // Scoped reads start from the few roots and look each up by oid; full reads scan the catalog.
  const from = (catalog: string, alias: string) =>
    full
      ? `${catalog} ${alias}`
      : `unnest($1::oid[]) root(oid) JOIN ${catalog} ${alias} ON ${alias}.oid = root.oid`;
  const parts = Branches.filter(([c]) => full || c === which).map(([, branch]) => branch({ from, scoped }));
  const ctes = [
    'params AS (SELECT $1::oid[] AS roots, $2::text[] AS schemas, $3::text[] AS tables)',
    `nsp AS (
  SELECT n.oid, n.nspname, quote_ident(n.nspname) AS q FROM pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
    AND n.nspname <> ALL($2::text[])
)`,
    full || which === 'pg_class'
      ? `rels AS (
  SELECT c.oid, c.relkind::text AS relkind, nsp.q || '.' || quote_ident(c.relname) AS qn
  FROM ${from('pg_class', 'c')} JOIN nsp ON nsp.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND (nsp.nspname || '.' || c.relname) <> ALL($3::text[])
    AND NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_class'::regclass AND m.objid = c.oid AND m.deptype = 'e')
)`
      : '',
    full || which === 'pg_type'
      ? `types AS (
  SELECT t.oid, t.typtype::text AS typtype, nsp.q || '.' || quote_ident(t.typname) AS qt
  FROM ${from('pg_type', 't')} JOIN nsp ON nsp.oid = t.typnamespace
  WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
    AND NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_type'::regclass AND m.objid = t.oid AND m.deptype = 'e')
)`
      : '',
  ].filter(Boolean);
  // Props are flat (values are scalars or arrays), so stripping null fields here is what the
  // snapshot keeps, and saves copying every object's props on our side (~12 ms of a 500-table read).
  return `WITH ${ctes.join(',\n')}
SELECT obj_class, obj_oid, root_class, root_oid, key, kind, name, parent, jsonb_strip_nulls(props) AS props FROM (
${parts.join('\nUNION ALL\n')}
) AS object(obj_class, obj_oid, root_class, root_oid, key, kind, name, parent, props)`;
}
