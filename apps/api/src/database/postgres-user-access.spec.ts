import {
  assertPostgresUserCanReach,
  EmbeddedPostgresAccessError,
  firstBlockedFolder,
} from './postgres-user-access';

const ROOT = { uid: 0, gid: 0 };
const POSTGRES = { uid: 101, gids: [104] };
/** A fake file system: folder → owner and mode. */
const tree: Record<string, { uid: number; gid: number; mode: number }> = {
  '/': { ...ROOT, mode: 0o755 },
  '/root': { ...ROOT, mode: 0o700 },
  '/root/repo': { ...ROOT, mode: 0o755 },
  '/srv': { ...ROOT, mode: 0o755 },
  '/srv/app': { ...ROOT, mode: 0o755 },
  '/srv/data': { ...ROOT, mode: 0o711 },
  '/srv/group': { uid: 0, gid: 104, mode: 0o750 },
  '/srv/pg': { uid: 101, gid: 104, mode: 0o700 },
};
const stat = (p: string) => {
  const st = tree[p];
  if (!st) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
  return st;
};
const realpath = (p: string) => p;

describe('firstBlockedFolder', () => {
  it('should name the first 0700 folder the postgres user cannot enter', () => {
    expect(firstBlockedFolder('/root/repo/bin/initdb', POSTGRES, stat, realpath)).toBe('/root');
  });

  it('should let a user through folders others may enter, its group may enter, or it owns', () => {
    expect(firstBlockedFolder('/srv/data/postgres', POSTGRES, stat, realpath)).toBeUndefined();
    expect(firstBlockedFolder('/srv/group/x', POSTGRES, stat, realpath)).toBeUndefined();
    expect(firstBlockedFolder('/srv/pg/x', POSTGRES, stat, realpath)).toBeUndefined();
  });

  it('should treat a user that does not exist yet as having no owner or group rights', () => {
    expect(firstBlockedFolder('/srv/group/x', undefined, stat, realpath)).toBe('/srv/group');
  });

  it('should stop at a folder that does not exist yet (it is created reachable)', () => {
    expect(firstBlockedFolder('/srv/new/deeper/postgres', POSTGRES, stat, realpath)).toBeUndefined();
  });

  it('should also check the real path behind a symbolic link', () => {
    const viaLink = (p: string) => (p === '/srv/app/link' ? '/root/repo/real' : p);
    expect(firstBlockedFolder('/srv/app/link', POSTGRES, stat, viaLink)).toBe('/root');
  });
});

describe('assertPostgresUserCanReach', () => {
  it('should say what to do in one sentence when the programs are out of reach', () => {
    expect(() =>
      assertPostgresUserCanReach('/root/repo/bin/initdb', '/srv/data', POSTGRES, stat, realpath),
    ).toThrow(EmbeddedPostgresAccessError);
    expect(() =>
      assertPostgresUserCanReach('/root/repo/bin/initdb', '/srv/data', POSTGRES, stat, realpath),
    ).toThrow(
      /cannot enter \/root on the way to its programs .*: put the checkout in a folder every user can enter/,
    );
  });

  it('should name DATA_DIR when only the data is out of reach', () => {
    expect(() =>
      assertPostgresUserCanReach('/srv/app/initdb', '/root/repo/.data', POSTGRES, stat, realpath),
    ).toThrow(/cannot enter \/root on the way to DATA_DIR \(\/root\/repo\/\.data\): set DATA_DIR to/);
  });

  it('should pass when both are reachable', () => {
    expect(() =>
      assertPostgresUserCanReach('/srv/app/initdb', '/srv/data', POSTGRES, stat, realpath),
    ).not.toThrow();
  });
});
