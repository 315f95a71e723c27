/**
 * One statement that reads the schema from pg_catalog, row per object:
 * (obj_class, obj_oid, root_class, root_oid, key, kind, name, parent, props).
 *
 * A "root" owns a family of objects that are read and replaced together: a relation (with its
 * columns, constraints, indexes, triggers, policies and rules), a type (with domain constraints),
 * a function, a schema, an extension, an event trigger. With $1 = true every root is read; else only
 * the roots touched by a step ($2/$3: catalog and oid of each touched object, mapped to its root, plus
 * whatever depends on it one level down, so that renaming a table refreshes the foreign keys and views
 * that name it) and the roots given directly ($4-$9). A `#root` row marks every root considered, so
 * the caller can drop the family of a root that no longer yields rows. The full and the scoped reads
 * are two statement texts, so that each gets its own plan (oid index lookups for the scoped one).
 *
 * Compare catalogs, not pg_dump text: dump order and layout change between server versions.
 *
 * $10: schemas to leave out (our bookkeeping), $11: `schema.table` names to leave out (history tables).
 */
export function snapshotSql(full: boolean): string {
  const scoped = (condition: string) => (full ? '' : `AND ${condition}`);
  // Scoped reads start from the few touched roots and look each up by oid; full reads scan the catalog.
  const from = (catalog: string, alias: string, roots: string) =>
    full
      ? `${catalog} ${alias}`
      : `(SELECT DISTINCT oid FROM ${roots} WHERE oid IS NOT NULL) root JOIN ${catalog} ${alias} ON ${alias}.oid = root.oid`;
  return `
WITH params AS (SELECT $1::boolean AS full_read),
touched AS (
  SELECT c::regclass::oid AS classid, objid FROM unnest($2::text[], $3::oid[]) AS t(c, objid)
),
expanded AS (
  SELECT classid, objid FROM touched
  UNION
  SELECT d.classid, d.objid FROM pg_depend d JOIN touched t ON d.refclassid = t.classid AND d.refobjid = t.objid
  WHERE d.deptype IN ('n', 'a', 'i')
),
rel_roots AS (
  SELECT unnest($4::oid[]) AS oid
  UNION SELECT CASE WHEN c.relkind IN ('i', 'I') THEN i.indrelid ELSE c.oid END
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
type_roots AS (
  SELECT unnest($5::oid[]) AS oid
  UNION SELECT CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END
    FROM expanded e JOIN pg_type t ON e.classid = 'pg_type'::regclass AND t.oid = e.objid
  UNION SELECT c.reltype FROM expanded e JOIN pg_class c ON e.classid = 'pg_class'::regclass AND c.oid = e.objid WHERE c.relkind = 'c'
  UNION SELECT co.contypid FROM expanded e JOIN pg_constraint co ON e.classid = 'pg_constraint'::regclass AND co.oid = e.objid WHERE co.contypid <> 0
),
func_roots AS (SELECT unnest($6::oid[]) AS oid UNION SELECT objid FROM expanded WHERE classid = 'pg_proc'::regclass),
ns_roots AS (SELECT unnest($7::oid[]) AS oid UNION SELECT objid FROM expanded WHERE classid = 'pg_namespace'::regclass),
ext_roots AS (SELECT unnest($8::oid[]) AS oid UNION SELECT objid FROM expanded WHERE classid = 'pg_extension'::regclass),
evt_roots AS (SELECT unnest($9::oid[]) AS oid UNION SELECT objid FROM expanded WHERE classid = 'pg_event_trigger'::regclass),
nsp AS (
  SELECT n.oid, n.nspname, quote_ident(n.nspname) AS q FROM pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
    AND n.nspname <> ALL($10::text[])
),
rels AS (
  SELECT c.oid, c.relkind::text AS relkind, nsp.q || '.' || quote_ident(c.relname) AS qn
  FROM ${from('pg_class', 'c', 'rel_roots')} JOIN nsp ON nsp.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND (nsp.nspname || '.' || c.relname) <> ALL($11::text[])
    AND NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_class'::regclass AND m.objid = c.oid AND m.deptype = 'e')
),
types AS (
  SELECT t.oid, t.typtype::text AS typtype, nsp.q || '.' || quote_ident(t.typname) AS qt
  FROM ${from('pg_type', 't', 'type_roots')} JOIN nsp ON nsp.oid = t.typnamespace
  WHERE (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind = 'c')))
    AND NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_type'::regclass AND m.objid = t.oid AND m.deptype = 'e')
)
SELECT NULL::text AS obj_class, NULL::oid AS obj_oid, 'pg_class' AS root_class, oid AS root_oid, NULL::text AS key, '#root' AS kind, NULL::text AS name, NULL::text AS parent, NULL::jsonb AS props
  FROM rel_roots WHERE NOT ${full} AND oid IS NOT NULL
UNION ALL SELECT NULL, NULL, 'pg_type', oid, NULL, '#root', NULL, NULL, NULL FROM type_roots WHERE NOT ${full} AND oid IS NOT NULL
UNION ALL SELECT NULL, NULL, 'pg_proc', oid, NULL, '#root', NULL, NULL, NULL FROM func_roots WHERE NOT ${full} AND oid IS NOT NULL
UNION ALL SELECT NULL, NULL, 'pg_namespace', oid, NULL, '#root', NULL, NULL, NULL FROM ns_roots WHERE NOT ${full} AND oid IS NOT NULL
UNION ALL SELECT NULL, NULL, 'pg_extension', oid, NULL, '#root', NULL, NULL, NULL FROM ext_roots WHERE NOT ${full} AND oid IS NOT NULL
UNION ALL SELECT NULL, NULL, 'pg_event_trigger', oid, NULL, '#root', NULL, NULL, NULL FROM evt_roots WHERE NOT ${full} AND oid IS NOT NULL

UNION ALL
SELECT 'pg_namespace', n.oid, 'pg_namespace', n.oid, 'schema:' || n.q, 'schema', n.q, NULL,
  jsonb_build_object('comment', (SELECT d.description FROM pg_description d WHERE d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass AND d.objsubid = 0))
FROM nsp n
WHERE NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_namespace'::regclass AND m.objid = n.oid AND m.deptype = 'e')
  ${scoped('n.oid IN (SELECT oid FROM ns_roots)')}

UNION ALL
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
      'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = r.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0))
    WHEN r.relkind IN ('v', 'm') THEN jsonb_build_object(
      'definition', pg_get_viewdef(r.oid, true),
      'options', (SELECT jsonb_agg(o ORDER BY o) FROM unnest(c.reloptions) o),
      'columns', (SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = r.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0))
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
      'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = r.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0))
  END
FROM rels r JOIN pg_class c ON c.oid = r.oid
LEFT JOIN pg_sequence s ON s.seqrelid = r.oid
CROSS JOIN LATERAL (SELECT CASE r.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                                          WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind) k

UNION ALL
SELECT 'pg_class', r.oid, 'pg_class', r.oid, 'column:' || r.qn || '.' || quote_ident(a.attname), 'column',
  r.qn || '.' || quote_ident(a.attname), r.qn,
  jsonb_build_object(
    'type', format_type(a.atttypid, a.atttypmod),
    'notNull', a.attnotnull,
    'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, ad.adrelid) END,
    'generated', CASE WHEN a.attgenerated <> '' THEN pg_get_expr(ad.adbin, ad.adrelid) || CASE a.attgenerated WHEN 's' THEN ' stored' ELSE ' virtual' END END,
    'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
    'collation', CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END,
    'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = r.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum))
FROM rels r
JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
WHERE r.relkind IN ('r', 'p', 'v', 'm', 'f')

UNION ALL
SELECT 'pg_constraint', co.oid, 'pg_class', r.oid, 'constraint:' || r.qn || '.' || quote_ident(co.conname), 'constraint',
  quote_ident(co.conname), r.qn,
  jsonb_build_object('type', CASE co.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key' WHEN 'u' THEN 'unique'
                                              WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' ELSE co.contype::text END,
                     'definition', pg_get_constraintdef(co.oid), 'validated', co.convalidated,
                     'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = co.oid AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0))
FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
WHERE co.contype::text <> 'n'

UNION ALL
SELECT 'pg_class', ic.oid, 'pg_class', r.oid, 'index:' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname), 'index',
  quote_ident(n.nspname) || '.' || quote_ident(ic.relname), r.qn,
  jsonb_build_object('definition', pg_get_indexdef(ic.oid), 'valid', i.indisvalid, 'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = ic.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0))
FROM rels r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace

UNION ALL
SELECT 'pg_trigger', tg.oid, 'pg_class', r.oid, 'trigger:' || r.qn || '.' || quote_ident(tg.tgname), 'trigger',
  quote_ident(tg.tgname), r.qn,
  jsonb_build_object('definition', pg_get_triggerdef(tg.oid), 'enabled', tg.tgenabled::text, 'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = tg.oid AND d.classoid = 'pg_trigger'::regclass AND d.objsubid = 0))
FROM rels r JOIN pg_trigger tg ON tg.tgrelid = r.oid
WHERE NOT tg.tgisinternal

UNION ALL
SELECT 'pg_policy', po.oid, 'pg_class', r.oid, 'policy:' || r.qn || '.' || quote_ident(po.polname), 'policy',
  quote_ident(po.polname), r.qn,
  jsonb_build_object(
    'command', CASE po.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert' WHEN 'w' THEN 'update' WHEN 'd' THEN 'delete' ELSE 'all' END,
    'permissive', po.polpermissive,
    'roles', (SELECT jsonb_agg(CASE WHEN ro = 0 THEN 'public' ELSE pg_get_userbyid(ro)::text END ORDER BY 1) FROM unnest(po.polroles) ro),
    'using', pg_get_expr(po.polqual, po.polrelid),
    'check', pg_get_expr(po.polwithcheck, po.polrelid),
    'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = po.oid AND d.classoid = 'pg_policy'::regclass AND d.objsubid = 0))
FROM rels r JOIN pg_policy po ON po.polrelid = r.oid

UNION ALL
SELECT 'pg_rewrite', ru.oid, 'pg_class', r.oid, 'rule:' || r.qn || '.' || quote_ident(ru.rulename), 'rule',
  quote_ident(ru.rulename), r.qn,
  jsonb_build_object('definition', pg_get_ruledef(ru.oid), 'enabled', ru.ev_enabled::text, 'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = ru.oid AND d.classoid = 'pg_rewrite'::regclass AND d.objsubid = 0))
FROM rels r JOIN pg_rewrite ru ON ru.ev_class = r.oid
WHERE ru.rulename <> '_RETURN'

UNION ALL
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
  END || jsonb_build_object('comment', (SELECT d.description FROM pg_description d WHERE d.objoid = ty.oid AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0))
FROM types ty JOIN pg_type t ON t.oid = ty.oid
LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
LEFT JOIN pg_range rg ON rg.rngtypid = ty.oid
CROSS JOIN LATERAL (SELECT CASE ty.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite type' ELSE 'range type' END AS kind) k

UNION ALL
SELECT 'pg_constraint', co.oid, 'pg_type', ty.oid, 'constraint:' || ty.qt || '.' || quote_ident(co.conname), 'constraint',
  quote_ident(co.conname), ty.qt,
  jsonb_build_object('type', 'check', 'definition', pg_get_constraintdef(co.oid), 'validated', co.convalidated,
                     'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = co.oid AND d.classoid = 'pg_constraint'::regclass AND d.objsubid = 0))
FROM types ty JOIN pg_constraint co ON co.contypid = ty.oid
WHERE co.contype::text <> 'n'

UNION ALL
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
    'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = p.oid AND d.classoid = 'pg_proc'::regclass AND d.objsubid = 0))
FROM (
  SELECT p.*, nsp.q || '.' || quote_ident(p.proname) || '(' || oidvectortypes(p.proargtypes) || ')' AS qf
  FROM ${from('pg_proc', 'p', 'func_roots')} JOIN nsp ON nsp.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_proc'::regclass AND m.objid = p.oid AND m.deptype = 'e')
    -- Range and multirange constructors come and go with their type.
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'i')
) p
JOIN pg_language l ON l.oid = p.prolang
CROSS JOIN LATERAL (SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' WHEN 'w' THEN 'window function' ELSE 'function' END AS kind) k

UNION ALL
SELECT 'pg_extension', e.oid, 'pg_extension', e.oid, 'extension:' || quote_ident(e.extname), 'extension', quote_ident(e.extname), NULL,
  jsonb_build_object('version', e.extversion, 'schema', n.nspname)
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE true ${scoped('e.oid IN (SELECT oid FROM ext_roots)')}

UNION ALL
SELECT 'pg_event_trigger', ev.oid, 'pg_event_trigger', ev.oid, 'event trigger:' || quote_ident(ev.evtname), 'event trigger',
  quote_ident(ev.evtname), NULL,
  jsonb_build_object('event', ev.evtevent, 'function', ev.evtfoid::regproc::text, 'tags', to_jsonb(ev.evttags),
                     'enabled', ev.evtenabled::text, 'comment', (SELECT d.description FROM pg_description d WHERE d.objoid = ev.oid AND d.classoid = 'pg_event_trigger'::regclass AND d.objsubid = 0))
FROM pg_event_trigger ev
WHERE ev.evtname NOT LIKE '\\_pg\\_migrate\\_verify%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_event_trigger'::regclass AND m.objid = ev.oid AND m.deptype = 'e')
  ${scoped('ev.oid IN (SELECT oid FROM evt_roots)')}
`;
}
