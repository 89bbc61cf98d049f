import { execFileSync } from 'node:child_process';
import { realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';

/**
 * PostgreSQL refuses to run as root, so when the service runs as root the embedded server runs
 * as the `postgres` system user. That user must be able to enter every folder on the way to the
 * binaries and to the data: a checkout in root's home (mode 0700) or a DATA_DIR below a 0700
 * folder cannot be reached, and the package then crashes the process with an unhandled
 * `spawn … EACCES` or fails with a raw initdb error. This check runs first and names the folder.
 */
export class EmbeddedPostgresAccessError extends Error {
  override readonly name = 'EmbeddedPostgresAccessError';
}

export interface UnixUser {
  uid: number;
  /** Primary and supplementary groups. */
  gids: readonly number[];
}

/** The `postgres` system user, or undefined when it does not exist yet (the package creates it). */
export function postgresUser(): UnixUser | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gids = execFileSync('id', ['-G', 'postgres'], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
    return { uid, gids };
  } catch {
    return undefined;
  }
}

/** Whether `user` (undefined: a user with no owner or group rights anywhere) may search (enter) `st`. */
function maySearch(st: Pick<Stats, 'uid' | 'gid' | 'mode'>, user: UnixUser | undefined): boolean {
  if (user && st.uid === user.uid) return (st.mode & 0o100) !== 0;
  if (user?.gids.includes(st.gid)) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/**
 * The first folder on the way to `target` (its ancestors, not `target` itself) that `user` may
 * not enter, or undefined. Checks the path as written and, when it goes through symbolic links,
 * the real path too; a folder that does not exist yet ends the walk (it will be created as needed).
 */
export function firstBlockedFolder(
  target: string,
  user: UnixUser | undefined,
  stat: (path: string) => Pick<Stats, 'uid' | 'gid' | 'mode'> = statSync,
  realpath: (path: string) => string = realpathSync,
): string | undefined {
  const paths = [resolve(target)];
  try {
    const real = realpath(target);
    if (real !== paths[0]) paths.push(real);
  } catch {
    // Not there yet: only the path as written can be checked.
  }
  for (const path of paths) {
    const parts = dirname(path).split(sep).filter(Boolean);
    let folder = sep;
    for (let i = 0; i <= parts.length; i++) {
      if (i > 0) folder = folder + (i > 1 ? sep : '') + parts[i - 1];
      let st: Pick<Stats, 'uid' | 'gid' | 'mode'>;
      try {
        st = stat(folder);
      } catch {
        break;
      }
      if (!maySearch(st, user)) return folder;
    }
  }
  return undefined;
}

/**
 * Throws an EmbeddedPostgresAccessError with one sentence saying what to do when the `postgres`
 * user cannot reach `binary` or `dataDir`.
 */
export function assertPostgresUserCanReach(
  binary: string,
  dataDir: string,
  user: UnixUser | undefined,
  stat?: (path: string) => Pick<Stats, 'uid' | 'gid' | 'mode'>,
  realpath?: (path: string) => string,
): void {
  const fix = 'run the service as a non-root user, or set DATABASE_URL to a PostgreSQL server of your own';
  const binBlocked = firstBlockedFolder(binary, user, stat, realpath);
  if (binBlocked) {
    throw new EmbeddedPostgresAccessError(
      `Embedded PostgreSQL runs as the "postgres" user when started as root, and that user cannot enter ` +
        `${binBlocked} on the way to its programs (${binary}): put the checkout in a folder every user can ` +
        `enter (e.g. /opt or /srv), ${fix}.`,
    );
  }
  const dataBlocked = firstBlockedFolder(resolve(dataDir, 'postgres'), user, stat, realpath);
  if (dataBlocked) {
    throw new EmbeddedPostgresAccessError(
      `Embedded PostgreSQL runs as the "postgres" user when started as root, and that user cannot enter ` +
        `${dataBlocked} on the way to DATA_DIR (${dataDir}): set DATA_DIR to a folder below folders every ` +
        `user can enter (e.g. /var/lib/vpn-cloud), ${fix}.`,
    );
  }
}
