import { describe, expect, test } from '@jest/globals';
import type { Finding } from '../../src/core/findings.js';
import { formatDuration } from '../../src/core/format.js';
import { inlineCode, renderMarkdown, renderSummary } from '../../src/core/markdown.js';
import { passwordOf, redactUrls } from '../../src/core/redact.js';
import { exitCodeOf, type Report, resultOf } from '../../src/core/report.js';

const finding = (severity: Finding['severity']): Finding => ({
  check: 'apply',
  severity,
  set: 's',
  message: 'm',
});

describe('verdict', () => {
  test('warnings fail only under fail-on: warning', () => {
    expect(resultOf([finding('warning')], 'error')).toBe('passed');
    expect(resultOf([finding('warning')], 'warning')).toBe('failed');
    expect(resultOf([finding('error')], 'error')).toBe('failed');
    expect(resultOf([], 'warning')).toBe('passed');
    expect([exitCodeOf('passed'), exitCodeOf('failed'), exitCodeOf('error')]).toEqual([0, 1, 2]);
  });
});

describe('redaction', () => {
  test('passwords in URLs and conninfo strings', () => {
    expect(redactUrls('to postgresql://app:p%40ss@db:5432/x and postgres://u:v@h/d')).toBe(
      'to postgresql://app:***@db:5432/x and postgres://u:***@h/d',
    );
    expect(redactUrls("host=db password='a b' user=x")).toBe('host=db password=*** user=x');
    expect(redactUrls('postgresql://app@db/x')).toBe('postgresql://app@db/x');
    expect(passwordOf('postgresql://app:p%40ss@db/x')).toBe('p@ss');
    expect(passwordOf('not a url')).toBeUndefined();
  });
});

describe('rendering', () => {
  const report: Report = {
    version: 1,
    result: 'failed',
    postgres: { version: '16.4', provider: 'binaries' },
    sets: [
      {
        name: 'db',
        dir: 'db',
        scope: 'all',
        format: 'sql',
        migrations: [
          {
            id: '0001_a|b',
            file: 'db/0001.up.sql',
            up: { ok: true, ms: 3 },
            down: { ok: false, ms: 2 },
            reversible: 'skipped',
            changes: [],
          },
        ],
        notes: [],
      },
    ],
    findings: [
      {
        check: 'rollback-all',
        severity: 'error',
        set: 'db',
        migration: '0001_a|b',
        file: 'db/0001.down.sql',
        line: 2,
        message: 'dropped <script>alert(1)</script>',
        detail: 'ERROR:  ```nested fence```',
      },
    ],
    timings: { total: 1500 },
  };

  test('Markdown: verdict first, a row per migration, findings with file:line, HTML escaped', () => {
    const md = renderMarkdown(report);
    expect(
      md.startsWith(
        '## pg-migrate-verify: ❌ failed\n\n1 migration checked · 1 error, 0 warnings · failing: rollback-all · PostgreSQL 16.4 (binaries) · 1.5 s',
      ),
    ).toBe(true);
    expect(md).toContain('| ❌ | `0001_a\\|b` | 3 ms | ❌ 2 ms | skipped |  |');
    expect(md).toContain('- ❌ `db/0001.down.sql:2` dropped &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(md).not.toContain('<script>');
    expect(md).toContain('  ````\n  ERROR:  ```nested fence```\n  ````');
    expect(md).toContain('**What to do:**');
  });

  test('terminal summary lists findings with location and detail', () => {
    expect(renderSummary(report).split('\n')).toEqual([
      'pg-migrate-verify: FAILED: 1 migration, 1 error, 0 warnings, PostgreSQL 16.4 (binaries), 1.5 s',
      '  error  rollback-all  db/0001.down.sql:2  dropped <script>alert(1)</script>',
      '        ERROR:  ```nested fence```',
    ]);
  });

  test('the base comparison and accepted findings, with their reasons, are in both renderings', () => {
    const compared: Report = {
      ...report,
      sets: [
        {
          ...(report.sets[0] as Report['sets'][number]),
          base: { ref: 'main', commit: '0123456789abcdef', migrations: 4, added: ['0005_x'] },
        },
      ],
      accepted: [
        {
          check: 'ordering',
          severity: 'error',
          set: 'db',
          migration: '0002_y',
          file: 'db/0002_y.up.sql',
          line: 3,
          message: '`0002_y` is already on main, and this branch edits it',
          reason: 'hotfix <INC-7>',
        },
      ],
    };
    const md = renderMarkdown(compared);
    expect(md).toContain('Compared with `main` at `0123456` (4 migrations): this branch adds `0005_x`.');
    expect(md).toContain('### Accepted (1)');
    expect(md).toContain('- ordering `0002_y` `db/0002_y.up.sql:3`: hotfix &lt;INC-7&gt;');
    const text = renderSummary(compared);
    expect(text).toContain('  base  db: main at 0123456, 4 migrations; adds 0005_x');
    expect(text).toContain('  accepted  ordering  0002_y: hotfix <INC-7>');
  });

  test('inline code survives backticks; durations read naturally', () => {
    expect(inlineCode('a`b')).toBe('``a`b``');
    expect(inlineCode('`x')).toBe('`` `x ``');
    expect([
      formatDuration(12.4),
      formatDuration(1500),
      formatDuration(300_000),
      formatDuration(90_000),
    ]).toEqual(['12 ms', '1.5 s', '5 min', '90 s']);
  });
});
