import { execFileSync } from 'node:child_process';
import { test } from '@jest/globals';

/**
 * The Python tools some suites drive for real (a Python runner, Python assertions and seeds,
 * alembic): Debian's /usr/bin/python3 with psycopg2 and SQLAlchemy, and alembic on PATH.
 * Without them those tests are skipped with the reason in their name (the summary lists them),
 * except where PG_MIGRATE_VERIFY_REQUIRE_PYTHON=1 (CI), where a missing tool fails them.
 */
export type PythonTool = 'psycopg2' | 'sqlalchemy' | 'alembic';

const Install = 'apt-get install python3-psycopg2 python3-sqlalchemy alembic';

function has(tool: PythonTool): boolean {
  try {
    if (tool === 'alembic') execFileSync('alembic', ['--version'], { stdio: 'ignore' });
    else execFileSync('/usr/bin/python3', ['-c', `import ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const known = new Map<PythonTool, boolean>();
const available = (tool: PythonTool) => {
  if (!known.has(tool)) known.set(tool, has(tool));
  return known.get(tool) as boolean;
};

/** The tools of `needs` this machine lacks. */
export function missingPython(needs: PythonTool[]): string[] {
  return needs.filter((tool) => !available(tool));
}

/** `test`, for a test that needs Python tools: skipped with its reason when they are missing. */
export function pythonTest(needs: PythonTool[], name: string, fn: () => Promise<void>): void {
  const missing = missingPython(needs);
  if (!missing.length) {
    test(name, fn);
    return;
  }
  const why = `needs ${missing.join(' and ')} for /usr/bin/python3; Debian: ${Install}`;
  if (process.env.PG_MIGRATE_VERIFY_REQUIRE_PYTHON === '1') {
    test(name, async () => {
      throw new Error(`This test ${why}, and PG_MIGRATE_VERIFY_REQUIRE_PYTHON=1 says it must run.`);
    });
    return;
  }
  test.skip(`${name} [skipped: ${why}]`, fn);
}
