// The last known endpoint of every peer, kept in <state dir>/peers.json, so that after a restart the
// gateway can start the handshake towards each device itself instead of waiting for the device's
// next attempt (which, with a session that the gateway lost, may be minutes away).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { isWireGuardKey } from '@app/protocol';
import { Logger, errorFields } from '@app/edge';

/** `a.b.c.d:port` or `[v6]:port`, as WireGuard reports endpoints. */
const ENDPOINT = /^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.%a-z0-9]+\]):\d{1,5}$/;

export function isEndpoint(value: unknown): value is string {
  return typeof value === 'string' && ENDPOINT.test(value);
}

/**
 * Changes are written at most once per `debounceMs`, as a whole new file renamed over the old one,
 * so a crash leaves the previous or the next version, never half of one.
 */
export class EndpointStore {
  private readonly endpoints = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private dirty = false;

  private constructor(
    readonly file: string,
    private readonly logger: Logger,
    private readonly debounceMs: number,
  ) {}

  /** A missing file is an empty store; an unreadable one is logged and replaced on the next write. */
  static async load(file: string, logger: Logger, debounceMs = 1000): Promise<EndpointStore> {
    const store = new EndpointStore(file, logger, debounceMs);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        logger.warn({ file, ...errorFields(err) }, 'peer endpoints not readable, starting without them');
      }
      return store;
    }
    try {
      const parsed = JSON.parse(text) as { endpoints?: unknown };
      const entries =
        typeof parsed.endpoints === 'object' && parsed.endpoints !== null
          ? Object.entries(parsed.endpoints)
          : [];
      for (const [key, endpoint] of entries) {
        if (isWireGuardKey(key) && isEndpoint(endpoint)) store.endpoints.set(key, endpoint);
      }
    } catch (err) {
      logger.warn({ file, ...errorFields(err) }, 'peer endpoints file is not JSON, starting without it');
    }
    return store;
  }

  get size(): number {
    return this.endpoints.size;
  }

  get(key: string): string | undefined {
    return this.endpoints.get(key);
  }

  set(key: string, endpoint: string): void {
    if (this.endpoints.get(key) === endpoint || !isEndpoint(endpoint)) return;
    this.endpoints.set(key, endpoint);
    this.schedule();
  }

  delete(key: string): void {
    if (this.endpoints.delete(key)) this.schedule();
  }

  /** Writes pending changes now (on a clean stop). */
  async flush(): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    await this.writing;
    if (this.dirty) await this.write();
  }

  private schedule(): void {
    this.dirty = true;
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A write still running when the next is due: the next one waits for it, then runs.
      void (this.writing ?? Promise.resolve()).then(() => this.write());
    }, this.debounceMs);
    this.timer.unref();
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    const run = async (): Promise<void> => {
      const tmp = `${this.file}.${process.pid}.tmp`;
      const body = JSON.stringify({ endpoints: Object.fromEntries(this.endpoints) });
      try {
        await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
        await writeFile(tmp, `${body}\n`, { mode: 0o600 });
        await rename(tmp, this.file);
      } catch (err) {
        this.dirty = true;
        this.logger.warn({ file: this.file, ...errorFields(err) }, 'peer endpoints not saved');
      }
    };
    this.writing = run().finally(() => {
      this.writing = undefined;
    });
    await this.writing;
  }
}
