// peers.json: loaded tolerantly, written atomically and debounced.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EndpointStore, isEndpoint } from './endpoint-store';
import { createLogger } from '@app/edge';

const key = (): string => randomBytes(32).toString('base64');
const logger = createLogger('silent');

describe('EndpointStore', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'endpoints-spec-'));
    file = join(dir, 'state', 'peers.json');
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('should start empty without a file, and write changes as { endpoints } with owner-only rights', async () => {
    const store = await EndpointStore.load(file, logger, 10_000);
    const k = key();
    store.set(k, '198.18.0.11:41000');
    expect(existsSync(file)).toBe(false);
    await store.flush();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ endpoints: { [k]: '198.18.0.11:41000' } });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(join(dir, 'state'))).toEqual(['peers.json']);
  });

  it('should write by itself after the debounce delay', async () => {
    const store = await EndpointStore.load(file, logger, 10);
    store.set(key(), '198.18.0.12:41000');
    const deadline = Date.now() + 5000;
    while (!existsSync(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(existsSync(file)).toBe(true);
  });

  it('should read back what it wrote, and forget deleted peers', async () => {
    const [a, b] = [key(), key()];
    const store = await EndpointStore.load(file, logger);
    store.set(a, '198.18.0.11:1');
    store.set(b, '[fd00::1]:51820');
    await store.flush();
    const again = await EndpointStore.load(file, logger);
    expect(again.get(a)).toBe('198.18.0.11:1');
    expect(again.get(b)).toBe('[fd00::1]:51820');
    again.delete(a);
    await again.flush();
    expect((await EndpointStore.load(file, logger)).size).toBe(1);
  });

  it('should drop entries that are not a key and an endpoint, and survive a file that is not JSON', async () => {
    const good = key();
    const path = join(dir, 'peers.json');
    writeFileSync(
      path,
      JSON.stringify({ endpoints: { [good]: '1.2.3.4:5', nokey: '1.2.3.4:5', [key()]: 'x;rm' } }),
    );
    const store = await EndpointStore.load(path, logger);
    expect(store.size).toBe(1);
    writeFileSync(path, '{not json');
    expect((await EndpointStore.load(path, logger)).size).toBe(0);
  });

  it('should take only endpoints in WireGuard form', () => {
    expect(isEndpoint('198.18.0.1:51820')).toBe(true);
    expect(isEndpoint('[fe80::1%eth0]:51820')).toBe(true);
    expect(isEndpoint('host.example:51820')).toBe(false);
    expect(isEndpoint('1.2.3.4:5\nremove=true')).toBe(false);
  });
});
