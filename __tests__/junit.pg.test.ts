import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { validateXML } from 'xmllint-wasm';
import { runCli } from '../src/cli.js';
import { renderJunit } from '../src/core/junit.js';
import { errorReport, type Report } from '../src/core/report.js';
import { repoRoot, useTestServer } from './helpers/postgres.js';

const server = useTestServer();
const xsd = readFileSync(path.join(repoRoot, '__tests__', 'schemas', 'junit-jenkins.xsd'), 'utf8');
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

/** xmllint's verdict on `xml` against the schema Jenkins and GitLab read: the errors, none when valid. */
async function schemaErrors(xml: string): Promise<string[]> {
  const result = await validateXML({
    xml: [{ fileName: 'report.xml', contents: xml }],
    schema: [{ fileName: 'junit.xsd', contents: xsd }],
  });
  return result.errors.map((e) => e.rawMessage);
}

/** The test cases of the XML: `classname name: outcome`. */
function cases(xml: string): string[] {
  return [
    ...xml.matchAll(/<testcase classname="([^"]*)" name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g),
  ].map((m) => {
    const body = m[4] ?? '';
    const outcome = /<failure/.test(body)
      ? 'failure'
      : /<error/.test(body)
        ? 'error'
        : /<skipped/.test(body)
          ? 'skipped'
          : /<system-out/.test(body)
            ? 'passed with warnings'
            : 'passed';
    return `${m[1]} ${m[2]}: ${outcome}`;
  });
}

describe('the JUnit report', () => {
  test('a run with findings: a case per migration and check, failures at their file and line, valid for Jenkins and GitLab', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'pgmv-junit-'));
    dirs.push(dir);
    const file = path.join(dir, 'junit.xml');
    const code = await runCli(
      [
        'fixtures/sql-golang-down-fails',
        '--database-url',
        server.adminUrl,
        '--skip',
        'locks',
        '--junit',
        file,
        '-q',
      ],
      { stdout: () => {}, stderr: () => {}, env: process.env, cwd: repoRoot },
    );
    expect(code).toBe(1);
    const xml = await readFile(file, 'utf8');
    expect(await schemaErrors(xml)).toEqual([]);
    expect(cases(xml)).toEqual([
      'apply 0001_create_customers: passed',
      'reversibility 0001_create_customers: passed',
      'apply 0002_create_orders: passed',
      'reversibility 0002_create_orders: failure',
      'rollback-all rollback-all: failure',
      'ordering ordering: passed',
    ]);
    expect(xml).toMatch(
      /<testsuites name="pg-migrate-verify" tests="6" failures="2" errors="0" time="[0-9.]+">\n {2}<testsuite name="fixtures\/sql-golang-down-fails" tests="6" failures="2" errors="0" skipped="0"/,
    );
    // The failure says where, in the words of the finding.
    expect(xml).toContain('>fixtures/sql-golang-down-fails/0002_create_orders.down.sql:');
  });

  test('hostile names and messages stay inside their elements; skipped and warned cases are marked', async () => {
    const hostile = 'a"b<c>&d\u0001e]]>';
    const report: Report = {
      version: 1,
      result: 'failed',
      postgres: { version: '16.4', provider: 'binaries' },
      sets: [
        {
          name: hostile,
          dir: 'db',
          format: 'sql',
          scope: 'all',
          notes: [],
          checks: ['apply', 'reversibility', 'locks', 'ordering'],
          migrations: [
            {
              id: `1_${hostile}`,
              file: 'db/1.up.sql',
              up: { ok: true, ms: 12.5 },
              down: null,
              reversible: 'no-down',
              changes: [],
            },
            { id: '2_next', file: 'db/2.up.sql', up: null, down: null, reversible: 'skipped', changes: [] },
          ],
        },
      ],
      findings: [
        {
          check: 'locks',
          severity: 'warning',
          set: hostile,
          migration: `1_${hostile}`,
          file: 'db/1.up.sql',
          line: 3,
          message: `takes a lock\n${hostile}`,
        },
        {
          check: 'apply',
          severity: 'error',
          set: hostile,
          migration: '2_next',
          file: 'db/2.up.sql',
          line: 1,
          message: `failed: ${hostile}`,
        },
        {
          check: 'ordering',
          severity: 'error',
          set: hostile,
          migration: '0_base',
          message: 'edited on the base branch',
        },
      ],
      timings: { total: 1234 },
    };
    const xml = renderJunit(report);
    expect(await schemaErrors(xml)).toEqual([]);
    expect(xml).not.toContain(hostile);
    expect(cases(xml)).toEqual([
      'apply 1_a&quot;b&lt;c&gt;&amp;d\uFFFDe]]&gt;: passed',
      'reversibility 1_a&quot;b&lt;c&gt;&amp;d\uFFFDe]]&gt;: skipped',
      'locks 1_a&quot;b&lt;c&gt;&amp;d\uFFFDe]]&gt;: passed with warnings',
      'apply 2_next: failure',
      'reversibility 2_next: skipped',
      'locks 2_next: skipped',
      'ordering ordering: failure',
    ]);
    expect(xml).toContain('<skipped message="no down step"/>');
    expect(xml).toContain('<system-out>warning: db/1.up.sql:3: takes a lock');
    expect(xml).toContain('time="1.234"');
  });

  test('a run that could not check is one error case, valid too', async () => {
    const xml = renderJunit(errorReport("Input 'migrations-dir' points to 'db', which holds no migrations."));
    expect(await schemaErrors(xml)).toEqual([]);
    expect(cases(xml)).toEqual(['pg-migrate-verify could not check: error']);
    expect(xml).toContain('errors="1"');
  });

  test('the schema refuses what Jenkins would not read (it can fail)', async () => {
    expect(
      await schemaErrors('<testsuites><testsuite name="x"><testcase/></testsuite></testsuites>'),
    ).not.toEqual([]);
  });
});
