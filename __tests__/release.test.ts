import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import YAML from 'yaml';
import { releaseNotes } from '../scripts/release-notes.js';
import { ActionRepository } from '../src/core/identity.js';

const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

describe('releases', () => {
  test("a version's notes are its CHANGELOG section; a version without one has none", () => {
    const changelog =
      '# Changelog\n\n## [Unreleased]\n\n- next\n\n## [1.1.0] - 2027-01-02\n\n### Fixed\n- a\n\n## [1.0.0] - 2026-12-20\n- first\n';
    expect(releaseNotes(changelog, '1.1.0')).toBe('### Fixed\n- a');
    expect(releaseNotes(changelog, '1.0.0')).toBe('- first');
    expect(releaseNotes(changelog, '1.0')).toBeUndefined();
    expect(releaseNotes(changelog, '2.0.0')).toBeUndefined();
    expect(releaseNotes(read('CHANGELOG.md'), 'Unreleased')).toContain('init');
  });

  test('the release script refuses a version the CHANGELOG does not have, saying what to do', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/release-notes.ts', '9.9.9'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain("CHANGELOG.md has no section '## [9.9.9]'");
  });

  test('the release workflow tests first, then tags vX.Y.Z, moves the major tag and publishes with provenance', () => {
    const workflow = YAML.parse(read('.github/workflows/release.yml'));
    expect(workflow.permissions).toEqual({ contents: 'read' });
    const release = workflow.jobs.release;
    expect(release.needs).toBe('test');
    expect(release.permissions).toEqual({ contents: 'write', 'id-token': 'write' });
    const steps = release.steps.map((s: { run?: string }) => s.run ?? '').join('\n');
    expect(steps).toContain('git tag -a "v$version"');
    expect(steps).toContain('git push -f origin "$major"');
    expect(steps).toContain('npm publish --provenance --access public');
    const tests = workflow.jobs.test.steps.map((s: { run?: string }) => s.run ?? '').join('\n');
    for (const part of ['npm run build', 'npm test', 'release-notes.ts']) expect(tests).toContain(part);
    expect(read('README.md')).toContain(`${ActionRepository}@v1`);
  });
});
