import { describe, expect, test } from '@jest/globals';
import { colourLine, colourText, wantsColour, withoutColour } from '../../src/core/colour.js';

describe('colour in the terminal', () => {
  test('on a terminal, off when piped, with NO_COLOR or a dumb terminal; FORCE_COLOR turns it on', () => {
    expect(wantsColour(true, {})).toBe(true);
    expect(wantsColour(false, {})).toBe(false);
    expect(wantsColour(undefined, {})).toBe(false);
    expect(wantsColour(true, { NO_COLOR: '1' })).toBe(false);
    expect(wantsColour(true, { NO_COLOR: '' })).toBe(true);
    expect(wantsColour(true, { TERM: 'dumb' })).toBe(false);
    expect(wantsColour(false, { FORCE_COLOR: '1' })).toBe(true);
    expect(wantsColour(false, { FORCE_COLOR: '0' })).toBe(false);
    expect(wantsColour(false, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(false);
  });

  test('marks are coloured, the words stay as they are', () => {
    expect(colourLine('✓ 1/3 0001_a  up 3 ms')).toBe('\x1b[32m✓\x1b[0m 1/3 0001_a  up 3 ms');
    expect(colourLine('✗ 2/3 0002_b  up failed (1 ms)')).toBe(
      '\x1b[31m✗\x1b[0m 2/3 0002_b  up failed (1 ms)',
    );
    expect(colourLine('pg-migrate-verify: FAILED: 3 migrations')).toBe(
      'pg-migrate-verify: \x1b[1m\x1b[31mFAILED\x1b[0m: 3 migrations',
    );
    expect(colourLine('  warn   locks  db/1.sql:2  takes a lock')).toBe(
      '  \x1b[33mwarn \x1b[0m  locks  db/1.sql:2  takes a lock',
    );
    expect(colourLine('a line with ✓ inside and error  in it')).toBe('a line with ✓ inside and error  in it');
    const text = 'pg-migrate-verify: PASSED: 1 migration\n  note  db: fine\n';
    expect(withoutColour(colourText(text))).toBe(text);
  });
});
