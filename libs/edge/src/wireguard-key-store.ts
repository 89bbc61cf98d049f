import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { Logger } from './logger';
import { runSystemCommand } from './system-command';

/** The key pair could not be read or created; the message says which file and why. */
export class WireguardKeyError extends Error {
  override readonly name = 'WireguardKeyError';
}

const KEY_PATTERN = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/;

export interface WireguardKeys {
  /** Absolute path of the private key file, handed to `wg set … private-key`; the key itself stays on disk. */
  privateKeyFile: string;
  publicKey: string;
}

/**
 * A WireGuard key pair (a device's, a gateway's, an engineer client's): generated with `wg genkey`
 * on first start and kept in the state dir, owner-only, so the process keeps its identity across
 * restarts and only its public key ever leaves it.
 */
export async function loadOrCreateKeys(stateDir: string, logger: Logger): Promise<WireguardKeys> {
  const dir = resolve(stateDir);
  const privateKeyFile = join(dir, 'wireguard-private.key');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    let privateKey = await readKey(privateKeyFile, logger);
    if (privateKey === undefined) {
      privateKey = (await runSystemCommand('wg', ['genkey'])).trim();
      await writeFile(privateKeyFile, `${privateKey}\n`, { mode: 0o600, flag: 'wx' });
      logger.info({ privateKeyFile }, 'generated a new WireGuard key pair');
    }
    const publicKey = (await runSystemCommand('wg', ['pubkey'], { input: `${privateKey}\n` })).trim();
    return { privateKeyFile, publicKey };
  } catch (err) {
    if (err instanceof WireguardKeyError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new WireguardKeyError(`WireGuard key in ${dir}: ${message}`, { cause: err });
  }
}

async function readKey(file: string, logger: Logger): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const key = text.trim();
  if (!KEY_PATTERN.test(key)) {
    throw new WireguardKeyError(`${file} does not hold a WireGuard private key`);
  }
  if (((await stat(file)).mode & 0o077) !== 0) {
    logger.warn(
      { privateKeyFile: file },
      'private key file was readable by others; restricting it to the owner',
    );
    await chmod(file, 0o600);
  }
  return key;
}
