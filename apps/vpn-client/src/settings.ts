// The client settings a portal reads and changes through /configuration: checked strictly, kept
// in the state dir as JSON so they survive restarts, applied from the next connect on.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

import { SerialQueue } from '@app/protocol';

export interface ClientSettings {
  /** How long to wait for the first WireGuard handshake with the gateway; 0 = do not wait. */
  handshakeTimeoutMs: number;
  /** How long to keep pinging the device through the tunnel before giving up; 0 = do not ping. */
  pingTimeoutMs: number;
  /** How long the cloud may wait for the device to bring its own VPN up (`_connect?timeout=`). */
  deviceConnectTimeoutMs: number;
}

export const DEFAULT_SETTINGS: Readonly<ClientSettings> = {
  handshakeTimeoutMs: 10_000,
  pingTimeoutMs: 10_000,
  deviceConnectTimeoutMs: 30_000,
};

const LIMITS: Readonly<Record<keyof ClientSettings, readonly [number, number]>> = {
  handshakeTimeoutMs: [0, 120_000],
  pingTimeoutMs: [0, 120_000],
  deviceConnectTimeoutMs: [1000, 300_000],
};

export const SETTINGS_FILE = 'configuration.json';

/** A bad settings object; the message names the key, so it can go straight into a 400. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

/**
 * The keys of `input` checked one by one. Keys left out are absent from the result (a PUT changes
 * only what it names); unknown keys are refused so a typo does not silently do nothing.
 */
export function validateSettings(input: unknown): Partial<ClientSettings> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SettingsError('the configuration must be a JSON object');
  }
  const result: Partial<ClientSettings> = {};
  for (const [key, value] of Object.entries(input)) {
    if (!Object.hasOwn(LIMITS, key)) {
      throw new SettingsError(`unknown key "${key}"; known keys: ${Object.keys(LIMITS).join(', ')}`);
    }
    const [min, max] = LIMITS[key as keyof ClientSettings];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new SettingsError(
        `${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`,
      );
    }
    result[key as keyof ClientSettings] = value;
  }
  return result;
}

export class SettingsStore {
  private current: ClientSettings = { ...DEFAULT_SETTINGS };
  /** Two PUTs at once must not lose one's keys: each starts from what the previous one saved. */
  private readonly writes = new SerialQueue();

  private constructor(private readonly file: string) {}

  /** Reads the saved settings; a file that is not valid stops the start with a message naming it. */
  static async open(stateDir: string): Promise<SettingsStore> {
    const store = new SettingsStore(join(stateDir, SETTINGS_FILE));
    let text: string;
    try {
      text = await readFile(store.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return store;
      throw err;
    }
    try {
      store.current = { ...DEFAULT_SETTINGS, ...validateSettings(JSON.parse(text)) };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new SettingsError(`${store.file}: ${why} (fix or delete the file)`);
    }
    return store;
  }

  get(): ClientSettings {
    return { ...this.current };
  }

  update(patch: Partial<ClientSettings>): Promise<ClientSettings> {
    return this.writes.run(async () => {
      const next = { ...this.current, ...patch };
      await this.save(next);
      this.current = next;
      return this.get();
    });
  }

  reset(): Promise<ClientSettings> {
    return this.writes.run(async () => {
      await rm(this.file, { force: true });
      this.current = { ...DEFAULT_SETTINGS };
      return this.get();
    });
  }

  /** Write-then-rename, so a crash mid-write never leaves a half file that would stop the next start. */
  private async save(settings: ClientSettings): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.file);
  }
}
