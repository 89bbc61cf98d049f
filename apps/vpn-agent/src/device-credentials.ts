import { readFile, writeFile } from 'node:fs/promises';

import { CLIENT_ID_PATTERN } from '@app/protocol';
import { ConfigError } from '@app/edge';

/** One simulated device's MQTT identity, as the REST API hands it out. */
export interface DeviceCredentials {
  clientId: string;
  username: string;
  password: string;
  /** The account the API created the device in, when it says so (checked against --account). */
  account?: string;
}

/** Reads a JSON array or JSON lines of `{clientId, username, password}`. */
export async function loadCredentialsFile(path: string): Promise<DeviceCredentials[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`--credentials ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let entries: unknown[];
  try {
    entries = text.trimStart().startsWith('[')
      ? (JSON.parse(text) as unknown[])
      : text
          .split('\n')
          .filter((line) => line.trim() !== '')
          .map((line) => JSON.parse(line) as unknown);
  } catch (err) {
    throw new ConfigError(`--credentials ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return entries.map((entry, index) => {
    const e = entry as Partial<Record<keyof DeviceCredentials, unknown>> | null;
    if (
      typeof e?.clientId !== 'string' ||
      !CLIENT_ID_PATTERN.test(e.clientId) ||
      typeof e.username !== 'string' ||
      typeof e.password !== 'string'
    ) {
      throw new ConfigError(
        `--credentials ${path}: entry ${index + 1} needs clientId, username and password`,
      );
    }
    return { clientId: e.clientId, username: e.username, password: e.password };
  });
}

/** JSON lines, owner-only: the file holds passwords. */
export async function saveCredentialsFile(
  path: string,
  credentials: readonly DeviceCredentials[],
): Promise<void> {
  const text = credentials.map((c) => JSON.stringify(c)).join('\n');
  await writeFile(path, `${text}\n`, { mode: 0o600 });
}
