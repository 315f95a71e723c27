import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface Generated {
  id: string;
  up: string;
  down: string;
}

/**
 * A synthetic history of `count` migrations that a correct tool must pass: tables, columns, indexes,
 * foreign keys, views, functions, enums and triggers, each down step undoing its up step exactly.
 */
export function generateHistory(count: number): Generated[] {
  const out: Generated[] = [];
  const tables: string[] = [];
  for (let i = 1; i <= count; i++) {
    const n = String(i).padStart(5, '0');
    const kind = tables.length === 0 ? 0 : i % 8;
    const t = tables[(i * 7) % tables.length] ?? '';
    let name: string;
    let up: string;
    let down: string;
    switch (kind) {
      case 0:
      case 1: {
        const table = `t${n}`;
        tables.push(table);
        name = `create_${table}`;
        up = `CREATE TABLE ${table} (\n  id bigserial PRIMARY KEY,\n  name text NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now()\n);\nCOMMENT ON TABLE ${table} IS 'table ${i}';\n`;
        down = `DROP TABLE ${table};\n`;
        break;
      }
      case 2:
        name = `add_c${n}_to_${t}`;
        up = `ALTER TABLE ${t} ADD COLUMN c${n} integer DEFAULT ${i} CHECK (c${n} >= 0);\n`;
        down = `ALTER TABLE ${t} DROP COLUMN c${n};\n`;
        break;
      case 3:
        name = `index_${t}_${n}`;
        up = `CREATE INDEX i${n} ON ${t} (lower(name)) WHERE created_at > '2020-01-01';\n`;
        down = `DROP INDEX i${n};\n`;
        break;
      case 4: {
        const table = `r${n}`;
        name = `create_${table}_ref_${t}`;
        up = `CREATE TABLE ${table} (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  parent_id bigint NOT NULL REFERENCES ${t} (id) ON DELETE CASCADE,\n  UNIQUE (parent_id, id)\n);\nCREATE INDEX ${table}_parent_idx ON ${table} (parent_id);\n`;
        down = `DROP TABLE ${table};\n`;
        break;
      }
      case 5:
        name = `view_${n}`;
        up = `CREATE VIEW v${n} AS SELECT id, upper(name) AS name FROM ${t} WHERE id > ${i};\n`;
        down = `DROP VIEW v${n};\n`;
        break;
      case 6:
        name = `enum_${n}`;
        up = `CREATE TYPE e${n} AS ENUM ('a', 'b', 'c');\nALTER TABLE ${t} ADD COLUMN s${n} e${n} NOT NULL DEFAULT 'a';\n`;
        down = `ALTER TABLE ${t} DROP COLUMN s${n};\nDROP TYPE e${n};\n`;
        break;
      default:
        name = `trigger_${n}`;
        up = `CREATE FUNCTION f${n}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.name := trim(NEW.name);\n  RETURN NEW;\nEND\n$$;\nCREATE TRIGGER tr${n} BEFORE INSERT OR UPDATE ON ${t} FOR EACH ROW EXECUTE FUNCTION f${n}();\n`;
        down = `DROP TRIGGER tr${n} ON ${t};\nDROP FUNCTION f${n}();\n`;
    }
    out.push({ id: `${n}_${name}`, up, down });
  }
  return out;
}

/** Writes the history as golang-migrate files into `dir`. */
export async function writeHistory(dir: string, history: Generated[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const m of history) {
    await writeFile(path.join(dir, `${m.id}.up.sql`), m.up);
    await writeFile(path.join(dir, `${m.id}.down.sql`), m.down);
  }
}

/**
 * An alembic project with a linear history of `count` revisions, each a table and an index, that a
 * correct tool must pass: `alembic.ini`, `migrations/env.py` (the URL from DATABASE_URL) and the
 * revision files.
 */
export async function writeAlembicProject(dir: string, count: number): Promise<void> {
  const versions = path.join(dir, 'migrations', 'versions');
  await mkdir(versions, { recursive: true });
  await writeFile(path.join(dir, 'alembic.ini'), '[alembic]\nscript_location = %(here)s/migrations\n');
  await writeFile(
    path.join(dir, 'migrations', 'env.py'),
    [
      'import os',
      'from alembic import context',
      'from sqlalchemy import create_engine',
      '',
      'with create_engine(os.environ["DATABASE_URL"]).connect() as connection:',
      '    context.configure(connection=connection, target_metadata=None)',
      '    with context.begin_transaction():',
      '        context.run_migrations()',
      '',
    ].join('\n'),
  );
  let parent: string | undefined;
  for (let i = 1; i <= count; i++) {
    const revision = i.toString(16).padStart(12, '0');
    await writeFile(
      path.join(versions, `${revision}_t${i}.py`),
      [
        `"""table t${i}"""`,
        'from alembic import op',
        'import sqlalchemy as sa',
        '',
        `revision = "${revision}"`,
        `down_revision = ${parent ? `"${parent}"` : 'None'}`,
        'branch_labels = None',
        'depends_on = None',
        '',
        '',
        'def upgrade():',
        `    op.create_table("t${i}", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))`,
        `    op.create_index("t${i}_name", "t${i}", ["name"])`,
        '',
        '',
        'def downgrade():',
        `    op.drop_index("t${i}_name", table_name="t${i}")`,
        `    op.drop_table("t${i}")`,
        '',
      ].join('\n'),
    );
    parent = revision;
  }
}
