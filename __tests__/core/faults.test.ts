import { describe, expect, it } from '@jest/globals';
import { lostConnection, missingExtension } from '../../src/core/faults.js';

describe('missingExtension', () => {
  it('reads the extension from what PostgreSQL 15+, 14 and a missing library say, through any client', () => {
    expect(missingExtension('extension "postgis" is not available')).toBe('postgis');
    expect(
      missingExtension(
        'psycopg2.errors.UndefinedFile: could not open extension control file "/usr/share/postgresql/14/extension/vector.control": No such file or directory',
      ),
    ).toBe('vector');
    expect(missingExtension('could not access file "$libdir/postgis-3": No such file or directory')).toBe(
      'postgis-3',
    );
    expect(missingExtension('relation "extension" does not exist')).toBeUndefined();
  });
});

describe('lostConnection', () => {
  it('knows a session the server ended, from the code or from any client text', () => {
    expect(
      lostConnection({ code: '57P01', message: 'terminating connection due to administrator command' }),
    ).toBe(true);
    expect(lostConnection({ message: 'Connection terminated unexpectedly' })).toBe(true);
    expect(
      lostConnection(
        { message: '`python3 migrate.py up 0002` exited with 1' },
        'psycopg2.OperationalError: server closed the connection unexpectedly',
      ),
    ).toBe(true);
    expect(lostConnection({ code: '57014', message: 'canceling statement due to user request' })).toBe(false);
    expect(lostConnection({ code: '42P01', message: 'relation "x" does not exist' })).toBe(false);
  });
});
