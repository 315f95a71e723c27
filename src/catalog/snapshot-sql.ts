import { BookkeepingSchema } from '../core/bookkeeping.js';
import { TakeLocksSql } from './locks.js';

/**
 * How the schema is read from pg_catalog: one row per object,
 * (obj_class, obj_oid, root_class, root_oid, key, kind, name, parent, props).
 *
 * A "root" owns a family of objects that are read and replaced together: a relation (with its
 * columns, constraints, indexes, triggers, policies and rules), a type (with domain constraints),
 * a function, a schema, an extension, an event trigger.
 *
 * - takeFunctionSql() is a function that takes the log our event triggers keep and reads the
 *   families of what it names (or only their prints), right after a step; rootOfFunctionSql(),
 *   the function that maps an object to its root, for it and for DependentsSql.
 * - DependentsSql finds the roots of what depends on given objects, one level down: after a rename,
 *   the foreign keys and views that name the renamed table read differently.
 * - familySql(class) reads the families of the given roots ($1) of one class: small statements,
 *   each an index lookup per root, run (inside the take) only for the classes a step touched.
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

/**
 * A function that maps a catalog object (its catalog's name, `pg_class`, and oid) to the root whose
 * family holds it: an index to its table, a constraint to its table or domain, a trigger, policy,
 * rule or default to its table, a table's row type to the table, an array type to its element, a
 * composite type's relation to the type. Null for an object in no family we read (a table's row
 * type array). The take maps what the log names with it; `DependentsSql`, what depends on a
 * renamed object.
 */
export function rootOfFunctionSql(): string {
  return `
CREATE OR REPLACE FUNCTION ${BookkeepingSchema}.root_of(p_class text, p_obj oid, OUT root_class text, OUT root_oid oid)
LANGUAGE plpgsql STABLE AS $root_of$
BEGIN
  IF p_class = 'pg_class' THEN
    SELECT CASE WHEN c.relkind = 'c' THEN 'pg_type' ELSE 'pg_class' END,
           CASE WHEN c.relkind IN ('i', 'I') THEN (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = c.oid)
                WHEN c.relkind = 'c' THEN c.reltype ELSE c.oid END
      INTO root_class, root_oid FROM pg_class c WHERE c.oid = p_obj;
  ELSIF p_class = 'pg_constraint' THEN
    SELECT CASE WHEN co.conrelid <> 0 THEN 'pg_class' ELSE 'pg_type' END,
           nullif(CASE WHEN co.conrelid <> 0 THEN co.conrelid ELSE co.contypid END, 0)
      INTO root_class, root_oid FROM pg_constraint co WHERE co.oid = p_obj;
  ELSIF p_class = 'pg_trigger' THEN
    SELECT 'pg_class', tg.tgrelid INTO root_class, root_oid FROM pg_trigger tg WHERE tg.oid = p_obj;
  ELSIF p_class = 'pg_policy' THEN
    SELECT 'pg_class', po.polrelid INTO root_class, root_oid FROM pg_policy po WHERE po.oid = p_obj;
  ELSIF p_class = 'pg_rewrite' THEN
    SELECT 'pg_class', ru.ev_class INTO root_class, root_oid FROM pg_rewrite ru WHERE ru.oid = p_obj;
  ELSIF p_class = 'pg_attrdef' THEN
    SELECT 'pg_class', ad.adrelid INTO root_class, root_oid FROM pg_attrdef ad WHERE ad.oid = p_obj;
  ELSIF p_class = 'pg_type' THEN
    -- A table's row type is its table's; an array type, its element's.
    SELECT CASE WHEN rc.relkind <> 'c' THEN 'pg_class' ELSE 'pg_type' END,
           CASE WHEN rc.relkind <> 'c' THEN rc.oid WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END
      INTO root_class, root_oid FROM pg_type t LEFT JOIN pg_class rc ON rc.oid = t.typrelid WHERE t.oid = p_obj;
  ELSIF p_class IN ('pg_proc', 'pg_namespace', 'pg_extension', 'pg_event_trigger') THEN
    root_class := p_class;
    root_oid := p_obj;
  END IF;
  -- A type root that is a table's row type (an array of one) is read with the table.
  IF root_class = 'pg_type'
     AND EXISTS (SELECT 1 FROM pg_type t JOIN pg_class c ON c.oid = t.typrelid WHERE t.oid = root_oid AND c.relkind <> 'c') THEN
    root_class := NULL;
    root_oid := NULL;
  END IF;
END
$root_of$;
`;
}

/**
 * Roots of the objects that depend on the given ones ($1 catalogs, $2 oids), one level down: after a
 * rename, the foreign keys, views, defaults and triggers that name the renamed object read differently.
 */
export const DependentsSql = `
SELECT DISTINCT r.root_class, r.root_oid
FROM unnest($1::text[], $2::oid[]) AS g(c, objid)
CROSS JOIN LATERAL (SELECT classid, objid FROM pg_depend d
                    WHERE d.refclassid = g.c::regclass::oid AND d.refobjid = g.objid AND d.deptype IN ('n', 'a', 'i') OFFSET 0) d
CROSS JOIN LATERAL ${BookkeepingSchema}.root_of(d.classid::regclass::text, d.objid) r
WHERE r.root_oid IS NOT NULL
`;

/** The comment on an object (a join by index, not the per-row SQL function obj_description). */
const comment = (oid: string, catalog: string, subid = '0') =>
  `(SELECT d.description FROM pg_description d WHERE d.objoid = ${oid} AND d.classoid = '${catalog}'::regclass AND d.objsubid = ${subid})`;

type Helpers = {
  from: (catalog: string, alias: string) => string;
  scoped: (oid: string) => string;
  full: boolean;
  /** A deparsed value that may lock a relation (see `familySql`'s `lockFree`), read only `when` that cannot happen there. */
  unlocked: (value: string, when?: string) => string;
};

/** A relation's storage options, sorted; null without any (most relations: then no sort runs). */
const options = `CASE WHEN c.reloptions IS NOT NULL THEN NULLIF(to_jsonb(ARRAY(SELECT o FROM unnest(c.reloptions) o ORDER BY o)), '[]') END`;

/** The tables a table `i.inhrelid` inherits from (`schema.table`), from where, in order of `i.inhseqno`. */
const Parent = {
  name: `quote_ident(pn.nspname) || '.' || quote_ident(pc.relname)`,
  from: `pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace`,
};

/** The functions (and procedures, aggregates) a family read covers, with their qualified signatures. */
const procs = (h: Helpers) => `(
  SELECT p.*, nsp.q || '.' || quote_ident(p.proname) || '(' || oidvectortypes(p.proargtypes) || ')' AS qf
  FROM ${h.from('pg_proc', 'p')} JOIN nsp ON nsp.oid = p.pronamespace
  WHERE NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_proc'::regclass AND m.objid = p.oid AND m.deptype = 'e')
    -- Range and multirange constructors come and go with their type.
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'i')
)`;

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
    (h) => `
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
      'definition', ${h.unlocked('pg_get_viewdef(r.oid, true)')},
      'options', ${options},
      'columns', NULLIF(to_jsonb(ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)), '[]'),
      'comment', ${comment('r.oid', 'pg_class')})
    ELSE jsonb_build_object(
      'persistence', CASE c.relpersistence WHEN 'u' THEN 'unlogged' WHEN 't' THEN 'temporary' ELSE 'permanent' END,
      'partitionKey', CASE WHEN r.relkind = 'p' THEN ${h.unlocked('pg_get_partkeydef(r.oid)')} END,
      'inherits', ${h.full ? 'ih.parents' : `NULLIF(to_jsonb(ARRAY(SELECT ${Parent.name} FROM ${Parent.from} WHERE i.inhrelid = r.oid ORDER BY i.inhseqno)), '[]')`},
      'bound', ${h.unlocked('pg_get_expr(c.relpartbound, c.oid)')},
      'options', ${options},
      'rowSecurity', c.relrowsecurity,
      'forceRowSecurity', c.relforcerowsecurity,
      'replicaIdentity', CASE c.relreplident WHEN 'd' THEN 'default' WHEN 'n' THEN 'nothing' WHEN 'f' THEN 'full' ELSE 'index' END,
      'columns', NULLIF(to_jsonb(ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)), '[]'),
      'comment', ${comment('r.oid', 'pg_class')})
  END
FROM rels r JOIN pg_class c ON c.oid = r.oid
LEFT JOIN pg_sequence s ON s.seqrelid = r.oid
${h.full ? 'LEFT JOIN parents ih ON ih.child = r.oid' : ''}
CROSS JOIN LATERAL (SELECT CASE r.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                                          WHEN 'f' THEN 'foreign table' ELSE 'table' END AS kind) k
`,
  ],
  [
    'pg_class',
    (h) => `
SELECT 'pg_class', r.oid, 'pg_class', r.oid, 'column:' || r.qn || '.' || quote_ident(a.attname), 'column',
  r.qn || '.' || quote_ident(a.attname), r.qn,
  jsonb_build_object(
    'type', format_type(a.atttypid, a.atttypmod),
    'notNull', a.attnotnull,
    -- Defaults cannot refer to columns, so deparse them without the relation: with it, every call
    -- builds a context from all the table's columns, O(columns^2) for a wide table.
    'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(ad.adbin, 0) END,
    'generated', CASE WHEN a.attgenerated <> '' THEN ${h.unlocked('pg_get_expr(ad.adbin, ad.adrelid)')} || CASE a.attgenerated WHEN 's' THEN ' stored' ELSE ' virtual' END END,
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
    (h) => `
SELECT 'pg_constraint', co.oid, 'pg_class', r.oid, 'constraint:' || r.qn || '.' || quote_ident(co.conname), 'constraint',
  quote_ident(co.conname), r.qn,
  jsonb_build_object('type', CASE co.contype WHEN 'p' THEN 'primary key' WHEN 'f' THEN 'foreign key' WHEN 'u' THEN 'unique'
                                              WHEN 'c' THEN 'check' WHEN 'x' THEN 'exclusion' ELSE co.contype::text END,
                     'definition', ${h.unlocked('pg_get_constraintdef(co.oid)', "co.contype IN ('p', 'u', 'f')")}, 'validated', co.convalidated,
                     'comment', ${comment('co.oid', 'pg_constraint')})
FROM rels r JOIN pg_constraint co ON co.conrelid = r.oid
WHERE co.contype::text <> 'n'
`,
  ],
  [
    'pg_class',
    (h) => `
SELECT 'pg_class', ic.oid, 'pg_class', r.oid, 'index:' || quote_ident(n.nspname) || '.' || quote_ident(ic.relname), 'index',
  quote_ident(n.nspname) || '.' || quote_ident(ic.relname), r.qn,
  jsonb_build_object('definition', ${h.unlocked('pg_get_indexdef(ic.oid)', 'i.indexprs IS NULL AND i.indpred IS NULL')}, 'valid', i.indisvalid, 'comment', ${comment('ic.oid', 'pg_class')})
FROM rels r JOIN pg_index i ON i.indrelid = r.oid JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
`,
  ],
  [
    'pg_class',
    (h) => `
SELECT 'pg_trigger', tg.oid, 'pg_class', r.oid, 'trigger:' || r.qn || '.' || quote_ident(tg.tgname), 'trigger',
  quote_ident(tg.tgname), r.qn,
  jsonb_build_object('definition', ${h.unlocked('pg_get_triggerdef(tg.oid)', 'tg.tgqual IS NULL')}, 'enabled', tg.tgenabled::text, 'comment', ${comment('tg.oid', 'pg_trigger')})
FROM rels r JOIN pg_trigger tg ON tg.tgrelid = r.oid
WHERE NOT tg.tgisinternal
`,
  ],
  [
    'pg_class',
    (h) => `
SELECT 'pg_policy', po.oid, 'pg_class', r.oid, 'policy:' || r.qn || '.' || quote_ident(po.polname), 'policy',
  quote_ident(po.polname), r.qn,
  jsonb_build_object(
    'command', CASE po.polcmd WHEN 'r' THEN 'select' WHEN 'a' THEN 'insert' WHEN 'w' THEN 'update' WHEN 'd' THEN 'delete' ELSE 'all' END,
    'permissive', po.polpermissive,
    'roles', NULLIF(to_jsonb(ARRAY(SELECT CASE WHEN ro = 0 THEN 'public' ELSE pg_get_userbyid(ro)::text END FROM unnest(po.polroles) ro ORDER BY 1)), '[]'),
    'using', ${h.unlocked('pg_get_expr(po.polqual, po.polrelid)')},
    'check', ${h.unlocked('pg_get_expr(po.polwithcheck, po.polrelid)')},
    'comment', ${comment('po.oid', 'pg_policy')})
FROM rels r JOIN pg_policy po ON po.polrelid = r.oid
`,
  ],
  [
    'pg_class',
    (h) => `
SELECT 'pg_rewrite', ru.oid, 'pg_class', r.oid, 'rule:' || r.qn || '.' || quote_ident(ru.rulename), 'rule',
  quote_ident(ru.rulename), r.qn,
  jsonb_build_object('definition', ${h.unlocked('pg_get_ruledef(ru.oid)')}, 'enabled', ru.ev_enabled::text, 'comment', ${comment('ru.oid', 'pg_rewrite')})
FROM rels r JOIN pg_rewrite ru ON ru.ev_class = r.oid
WHERE ru.rulename <> '_RETURN'
`,
  ],
  [
    'pg_type',
    (_h) => `
SELECT 'pg_type', ty.oid, 'pg_type', ty.oid, k.kind || ':' || ty.qt, k.kind, ty.qt, NULL,
  CASE ty.typtype
    WHEN 'e' THEN jsonb_build_object('labels', NULLIF(to_jsonb(ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = ty.oid ORDER BY e.enumsortorder)), '[]'))
    WHEN 'd' THEN jsonb_build_object('baseType', format_type(t.typbasetype, t.typtypmod), 'notNull', t.typnotnull, 'default', t.typdefault,
                                     'collation', CASE WHEN t.typcollation <> bt.typcollation THEN t.typcollation::regcollation::text END)
    WHEN 'c' THEN jsonb_build_object('attributes', NULLIF(to_jsonb(ARRAY(SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)), '[]'))
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
    'body', CASE WHEN p.prokind = 'a' THEN NULL WHEN p.prosqlbody IS NOT NULL THEN ${h.unlocked('pg_get_function_sqlbody(p.oid)')} ELSE p.prosrc END,
    'comment', ${comment('p.oid', 'pg_proc')})
FROM ${procs(h)} p
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

/**
 * A root's print: a hash of the catalog rows its family is read from, as they are stored, without
 * deparsing anything. A row is named by the fields DDL can change in place that we read (a name,
 * nullability, validity; the statistics Postgres keeps in place, such as reltuples or relhasindex,
 * left out), where it cannot by its oid (a constraint's or an index's definition is fixed once
 * made), and rare ones (policies, rules) by the transaction that last wrote them (`xmin`: an update
 * writes a new row version, so an update that restores the same text still differs). Equal prints mean an equal family, as long as the
 * objects it names (types, other tables) are as they were, which the walk knows from their own
 * prints; a family made again (new oids) or a row written again differs, and is then read in full.
 * One row per root: (NULL, NULL, root_class, root_oid, NULL, 'print', NULL, NULL, md5 as jsonb).
 */
const Prints: [RootClass, (h: Helpers) => string][] = [
  [
    'pg_namespace',
    (h) => `
SELECT NULL, NULL::oid, 'pg_namespace', n.oid, NULL, 'print', NULL, NULL,
  to_jsonb(md5(row(x.*, ${comment('n.oid', 'pg_namespace')})::text))
FROM nsp n JOIN pg_namespace x ON x.oid = n.oid
WHERE NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_namespace'::regclass AND m.objid = n.oid AND m.deptype = 'e')
  ${h.scoped('n.oid')}
`,
  ],
  [
    'pg_class',
    (_h) => `
SELECT NULL, NULL::oid, 'pg_class', r.oid, NULL, 'print', NULL, NULL, to_jsonb(md5(concat_ws(E'\\n',
  (SELECT row(c.relname, c.relnamespace, c.reltype, c.reloftype, c.relam, c.reltablespace, c.relpersistence, c.relkind,
              c.relrowsecurity, c.relforcerowsecurity, c.relreplident, c.relispartition, c.reloptions, c.relpartbound)::text
     FROM pg_class c WHERE c.oid = r.oid),
  array_to_string(ARRAY(SELECT row(a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull, a.attidentity, a.attgenerated, a.attcollation)::text FROM pg_attribute a WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), ','),
  array_to_string(ARRAY(SELECT ad.oid::text FROM pg_attrdef ad WHERE ad.adrelid = r.oid ORDER BY ad.oid), ','),
  array_to_string(ARRAY(SELECT row(co.oid, co.conname, co.convalidated, co.condeferrable, co.condeferred)::text || coalesce(${comment('co.oid', 'pg_constraint')}, '') FROM pg_constraint co WHERE co.conrelid = r.oid ORDER BY co.oid), ','),
  array_to_string(ARRAY(SELECT row(i.indexrelid, i.indisvalid, ic.relname, ic.relnamespace, ic.reloptions)::text || coalesce(${comment('ic.oid', 'pg_class')}, '') FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = r.oid ORDER BY i.indexrelid), ','),
  array_to_string(ARRAY(SELECT row(tg.oid, tg.tgname, tg.tgenabled)::text || coalesce(${comment('tg.oid', 'pg_trigger')}, '') FROM pg_trigger tg WHERE tg.tgrelid = r.oid AND NOT tg.tgisinternal ORDER BY tg.oid), ','),
  array_to_string(ARRAY(SELECT po.oid || ':' || po.xmin || ':' || coalesce(${comment('po.oid', 'pg_policy')}, '') FROM pg_policy po WHERE po.polrelid = r.oid ORDER BY po.oid), ','),
  array_to_string(ARRAY(SELECT ru.oid || ':' || ru.xmin || ':' || coalesce(${comment('ru.oid', 'pg_rewrite')}, '') FROM pg_rewrite ru WHERE ru.ev_class = r.oid ORDER BY ru.oid), ','),
  array_to_string(ARRAY(SELECT d.objsubid || ':' || d.description FROM pg_description d
    WHERE d.objoid = r.oid AND d.classoid = 'pg_class'::regclass ORDER BY d.objsubid), ','),
  array_to_string(ARRAY(SELECT inh.inhparent || ':' || inh.inhseqno FROM pg_inherits inh WHERE inh.inhrelid = r.oid ORDER BY inh.inhseqno), ','),
  CASE WHEN r.relkind = 'p' THEN (SELECT pt.xmin::text FROM pg_partitioned_table pt WHERE pt.partrelid = r.oid) END,
  CASE WHEN r.relkind = 'S' THEN (SELECT sq::text FROM pg_sequence sq WHERE sq.seqrelid = r.oid) END,
  CASE WHEN r.relkind = 'S' THEN array_to_string(ARRAY(
    SELECT dp.refclassid || ':' || dp.refobjid || ':' || dp.refobjsubid || ':' || dp.deptype::text
      FROM pg_depend dp WHERE dp.classid = 'pg_class'::regclass AND dp.objid = r.oid
     ORDER BY dp.refclassid, dp.refobjid, dp.refobjsubid, dp.deptype), ',') END
)))
FROM rels r
`,
  ],
  [
    'pg_type',
    (_h) => `
SELECT NULL, NULL::oid, 'pg_type', ty.oid, NULL, 'print', NULL, NULL, to_jsonb(md5(concat_ws(E'\\n',
  (SELECT row(t.*, ${comment('t.oid', 'pg_type')})::text FROM pg_type t WHERE t.oid = ty.oid),
  array_to_string(ARRAY(SELECT e::text FROM pg_enum e WHERE e.enumtypid = ty.oid ORDER BY e.enumsortorder), ','),
  (SELECT rg::text FROM pg_range rg WHERE rg.rngtypid = ty.oid),
  array_to_string(ARRAY(SELECT row(co.*, ${comment('co.oid', 'pg_constraint')})::text FROM pg_constraint co WHERE co.contypid = ty.oid ORDER BY co.oid), ','),
  array_to_string(ARRAY(SELECT a::text FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
    WHERE t.oid = ty.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), ',')
)))
FROM types ty
`,
  ],
  [
    'pg_proc',
    (h) => `
SELECT NULL, NULL::oid, 'pg_proc', p.oid, NULL, 'print', NULL, NULL, to_jsonb(md5(row(p.*, ${comment('p.oid', 'pg_proc')})::text))
FROM ${procs(h)} p
`,
  ],
  [
    'pg_extension',
    (h) => `
SELECT NULL, NULL::oid, 'pg_extension', e.oid, NULL, 'print', NULL, NULL, to_jsonb(md5(e::text))
FROM pg_extension e
WHERE true ${h.scoped('e.oid')}
`,
  ],
  [
    'pg_event_trigger',
    (h) => `
SELECT NULL, NULL::oid, 'pg_event_trigger', ev.oid, NULL, 'print', NULL, NULL,
  to_jsonb(md5(row(ev.*, ${comment('ev.oid', 'pg_event_trigger')})::text))
FROM pg_event_trigger ev
WHERE ev.evtname NOT LIKE '\\_pg\\_migrate\\_verify%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = 'pg_event_trigger'::regclass AND m.objid = ev.oid AND m.deptype = 'e')
  ${h.scoped('ev.oid')}
`,
  ],
];

/** What a family read returns besides the objects: each root's print (`with`), or only the prints (`only`). */
export type PrintsIn = 'none' | 'with' | 'only';

/**
 * A family read of one class of roots, or of everything (`all`). `args` names its three inputs
 * (roots, schemas and `schema.table` names to leave out): `$1`-`$3` for a prepared statement, or
 * variables inside a function. `lockFree`: without what deparsing would lock a relation for (a
 * view's query, an expression read with its table's columns: a check constraint, an expression
 * index, a trigger's WHEN, a policy, a rule, a generated column, a partition key or bound, a SQL
 * function body), so that it can run while migrations change the schema in another session and
 * never holds them up: a read that only readies the session's caches (`warmUpSql`).
 */
export function familySql(
  which: RootClass | 'all',
  {
    prints = 'none',
    args = ['$1', '$2', '$3'],
    lockFree = false,
  }: { prints?: PrintsIn; args?: [string, string, string]; lockFree?: boolean } = {},
): string {
  const [roots, schemas, tables] = args;
  const full = which === 'all';
  const scoped = (oid: string) => (full ? '' : `AND ${oid} = ANY(${roots}::oid[])`);
  // Scoped reads start from the few roots and look each up by oid; full reads scan the catalog.
  const from = (catalog: string, alias: string) =>
    full
      ? `${catalog} ${alias}`
      : `unnest(${roots}::oid[]) root(oid) JOIN ${catalog} ${alias} ON ${alias}.oid = root.oid`;
  const unlocked = (value: string, when?: string) =>
    !lockFree ? value : when ? `CASE WHEN ${when} THEN ${value} END` : 'NULL';
  const helpers = { from, scoped, full, unlocked };
  const branches = (list: [RootClass, (h: Helpers) => string][]) =>
    list.filter(([c]) => full || c === which).map(([, branch]) => branch(helpers));
  const parts = [
    ...(prints === 'only' ? [] : branches(Branches)),
    ...(prints === 'none' ? [] : branches(Prints)),
  ];
  const ctes = [
    `params AS (SELECT ${roots}::oid[] AS roots, ${schemas}::text[] AS schemas, ${tables}::text[] AS tables)`,
    `nsp AS (
  SELECT n.oid, n.nspname, quote_ident(n.nspname) AS q FROM pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
    AND n.nspname NOT LIKE 'pg\\_temp\\_%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'
    AND n.nspname <> ALL(${schemas}::text[])
)`,
    full || which === 'pg_class'
      ? `rels AS (
  SELECT c.oid, c.relkind::text AS relkind, nsp.q || '.' || quote_ident(c.relname) AS qn
  FROM ${from('pg_class', 'c')} JOIN nsp ON nsp.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND (nsp.nspname || '.' || c.relname) <> ALL(${tables}::text[])
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
    // A full read gathers every table's parents at once (few tables have any).
    full
      ? `parents AS (
  SELECT i.inhrelid AS child, to_jsonb(array_agg(${Parent.name} ORDER BY i.inhseqno)) AS parents
  FROM ${Parent.from} GROUP BY i.inhrelid
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

/** The kinds of what the take function returns in its first column. */
export type TakeRow = 'root' | 'object' | 'many' | 'rider' | 'elapsed' | 'error';

/**
 * A function that reads and clears the log our event triggers keep and reads what it names, in one
 * call: the roots of the objects the steps since the last call touched (`root` rows, kind `touched`),
 * the objects they dropped (kind `dropped`: gone from the catalog, their roots are known from earlier
 * reads), each once per transaction that logged it (its id in `props`: steps read together are told
 * apart by it, see `CatalogTracker.splitTake`), then the families of the touched roots and of
 * `p_extra` (`object` rows, with each root's print), or with `p_mode` 'prints' only their prints. `p_mode` 'read': the families of `p_extra`
 * only, the log left alone. More roots (or logged objects) than `p_most`: a `many` row instead of
 * the families (a full read is cheaper; the roots found before it was clear may come first). Then
 * what the locks check traced (`rider` rows: `TakeLocksSql`, with p_locks and p_switch). Last,
 * `elapsed` (its own time, ms, in `props`). The extra roots must be distinct.
 *
 * Its statements are planned once per session (a generic plan: planning one costs more than
 * running it), and it can run in the session that ran the step, right after the step's COMMIT in
 * the same round trip, so the read costs no round trip of its own. So that it reads exactly as the
 * catalog session's statements do there, it keeps the settings that shape what it reads (search
 * path, date and number output: `FROM CURRENT`, as it is created there) whatever a migration set
 * in its own session, and runs as its owner (a migration's SET ROLE). Its reads look roots up by
 * index, never by a scan: the catalogs' statistics are those of an empty database (no autovacuum),
 * so a plan made early would scan pg_trigger or pg_sequence whole on every read, however long the
 * history grows. It never fails the round trip it rides on: an error comes back as an `error`
 * row, and what it did is undone (the log stays for the next read).
 */
export function takeFunctionSql(): string {
  const S = BookkeepingSchema;
  // One row of the result, by assignment (no statement): the fields given, the others null.
  const emit = (f: { t: string; rootClass?: string; rootOid?: string; kind?: string; props?: string }) =>
    `r_t := ${f.t}; r_obj_class := NULL; r_obj_oid := NULL; r_root_class := ${f.rootClass ?? 'NULL'}; r_root_oid := ${f.rootOid ?? 'NULL'}; r_key := NULL; r_kind := ${f.kind ?? 'NULL'}; r_name := NULL; r_parent := NULL; r_props := ${f.props ?? 'NULL'};
        RETURN NEXT;`;
  const args: [string, string, string] = ['v_roots', 'p_schemas', 'p_tables'];
  const read = (mode: 'with' | 'only') =>
    RootClasses.map(
      (c) => `
      IF '${c}' = ANY(v_wc) THEN
        v_roots := '{}';
        FOR i IN 1 .. cardinality(v_wc) LOOP
          IF v_wc[i] = '${c}' THEN
            v_roots := v_roots || v_wo[i];
          END IF;
        END LOOP;
        RETURN QUERY SELECT 'object'::text, f.* FROM (${familySql(c, { prints: mode, args })}) f;
      END IF;`,
    ).join('\n');
  return `
CREATE OR REPLACE FUNCTION ${S}.take(p_mode text, p_extra_classes text[], p_extra_oids oid[], p_schemas text[], p_tables text[], p_most int,
  p_locks boolean, p_switch boolean)
RETURNS TABLE (r_t text, r_obj_class text, r_obj_oid oid, r_root_class text, r_root_oid oid, r_key text, r_kind text, r_name text, r_parent text, r_props jsonb)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path FROM CURRENT SET datestyle FROM CURRENT SET intervalstyle FROM CURRENT
SET extra_float_digits FROM CURRENT SET plan_cache_mode = force_generic_plan
SET enable_hashjoin = off SET enable_mergejoin = off SET enable_seqscan = off SET enable_bitmapscan = off
AS $take$
DECLARE
  v_started timestamptz := clock_timestamp();
  v_keys text[] := '{}'; v_read text[] := '{}'; v_gone text[] := '{}';
  v_cls text; v_obj oid; v_drop boolean; v_xid bigint; v_c text; v_o oid; v_root record; v_key text; v_rk text;
  v_wc text[] := '{}'; v_wo oid[] := '{}';
  v_roots oid[];
  v_logged int := 0; v_many boolean := false;
  v_po oid[] := '{}'; v_px bigint[] := '{}';
BEGIN
  BEGIN
    -- Statements cost executor setup however little they read: the few roots a step touches are
    -- gathered and returned with plain assignments (RETURN NEXT), and reads with nothing to read skipped.
    IF p_mode <> 'read' THEN
    -- Each logged object to the root whose family holds it, one by one: a step logs a few. A
    -- dropped one is gone from the catalog: its root is known only from our earlier reads. More
    -- logged than p_most (many steps since the last take, e.g. up again): a full read follows
    -- anyway, so they are taken without looking their roots up.
    FOR v_cls, v_obj, v_drop, v_xid IN DELETE FROM ${S}.ddl_log RETURNING classid, objid, dropped, xid LOOP
      v_logged := v_logged + 1;
      IF v_logged > p_most THEN
        v_many := true;
        EXIT;
      END IF;
      IF v_drop THEN
        v_c := v_cls;
        v_o := v_obj;
      ELSE
        v_root := ${S}.root_of(v_cls, v_obj);
        v_c := v_root.root_class;
        v_o := v_root.root_oid;
      END IF;
      -- A root once per transaction that logged it (steps read together are told apart by it),
      -- its family read once.
      v_rk := v_c || ':' || v_o;
      v_key := v_rk || ':' || v_drop || ':' || coalesce(v_xid, 0);
      IF v_key IS NOT NULL AND NOT v_key = ANY(v_keys) THEN
        v_keys := v_keys || v_key;
        ${emit({ t: "'root'", rootClass: 'v_c', rootOid: 'v_o', kind: "CASE WHEN v_drop THEN 'dropped' ELSE 'touched' END", props: 'to_jsonb(v_xid)' })}
        IF v_drop THEN
          IF NOT v_rk = ANY(v_gone) THEN
            v_gone := v_gone || v_rk;
          END IF;
        ELSE
          IF v_c = 'pg_class' THEN
            v_po := v_po || v_o;
            v_px := v_px || v_xid;
          END IF;
          IF NOT v_rk = ANY(v_read) THEN
            v_read := v_read || v_rk;
            v_wc := v_wc || v_c;
            v_wo := v_wo || v_o;
          END IF;
        END IF;
      END IF;
    END LOOP;
    -- A table's partitions and inheritance children change with it (an index, a column or a
    -- trigger made on the parent is made on each of them) and nothing logs them: they are touched
    -- with it, by the same transaction.
    IF NOT v_many AND cardinality(v_po) > 0 THEN
      FOR v_o, v_xid IN
        WITH RECURSIVE kids(oid, xid) AS (
          SELECT i.inhrelid, p.xid FROM unnest(v_po, v_px) AS p(oid, xid) JOIN pg_inherits i ON i.inhparent = p.oid
          UNION
          SELECT i.inhrelid, k.xid FROM kids k JOIN pg_inherits i ON i.inhparent = k.oid)
        SELECT kids.oid, kids.xid FROM kids
      LOOP
        v_rk := 'pg_class:' || v_o;
        v_key := v_rk || ':false:' || coalesce(v_xid, 0);
        IF NOT v_key = ANY(v_keys) THEN
          v_keys := v_keys || v_key;
          ${emit({ t: "'root'", rootClass: "'pg_class'", rootOid: 'v_o', kind: "'touched'", props: 'to_jsonb(v_xid)' })}
          IF NOT v_rk = ANY(v_read) THEN
            v_read := v_read || v_rk;
            v_wc := v_wc || 'pg_class'::text;
            v_wo := v_wo || v_o;
          END IF;
        END IF;
      END LOOP;
    END IF;
    END IF;
    -- The extra roots (distinct) besides; one the steps dropped has nothing to read (a down step
    -- that drops what its up step made).
    IF NOT v_many THEN
      FOR i IN 1 .. coalesce(cardinality(p_extra_oids), 0) LOOP
        v_rk := p_extra_classes[i] || ':' || p_extra_oids[i];
        IF NOT (v_rk = ANY(v_read) OR v_rk = ANY(v_gone)) THEN
          v_wc := v_wc || p_extra_classes[i];
          v_wo := v_wo || p_extra_oids[i];
        END IF;
      END LOOP;
    END IF;
    IF v_many OR cardinality(v_wc) > p_most THEN
      ${emit({ t: "'many'" })}
    ELSIF p_mode = 'prints' THEN
      ${read('only')}
    ELSE
      ${read('with')}
    END IF;
    ${TakeLocksSql}
    ${emit({ t: "'elapsed'", props: 'to_jsonb(extract(epoch FROM clock_timestamp() - v_started) * 1000)' })}
  EXCEPTION WHEN OTHERS THEN
    RETURN QUERY SELECT 'error'::text, NULL::text, NULL::oid, NULL::text, NULL::oid, NULL::text, NULL::text, SQLERRM, NULL::text, NULL::jsonb;
  END;
END
$take$;
`;
}
