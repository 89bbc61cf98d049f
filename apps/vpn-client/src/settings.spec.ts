// Client settings (/configuration): strict validation, persistence in the state dir, reset.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DEFAULT_SETTINGS, SETTINGS_FILE, SettingsError, SettingsStore, validateSettings } from './settings';

describe('validateSettings', () => {
  it('should accept any subset of the known keys within their ranges', () => {
    expect(validateSettings({})).toEqual({});
    expect(validateSettings({ pingTimeoutMs: 0, handshakeTimeoutMs: 120_000 })).toEqual({
      pingTimeoutMs: 0,
      handshakeTimeoutMs: 120_000,
    });
    expect(validateSettings({ deviceConnectTimeoutMs: 1000 })).toEqual({ deviceConnectTimeoutMs: 1000 });
  });

  it.each([
    [null, /JSON object/],
    [[], /JSON object/],
    ['x', /JSON object/],
    [{ pingTimeoutMS: 1 }, /unknown key "pingTimeoutMS"/],
    [{ pingTimeoutMs: -1 }, /pingTimeoutMs must be an integer from 0 to 120000/],
    [{ pingTimeoutMs: 1.5 }, /pingTimeoutMs/],
    [{ pingTimeoutMs: '1000' }, /pingTimeoutMs/],
    [{ handshakeTimeoutMs: 120_001 }, /handshakeTimeoutMs/],
    [{ deviceConnectTimeoutMs: 999 }, /deviceConnectTimeoutMs/],
  ])('should refuse %j', (input, message) => {
    expect(() => validateSettings(input)).toThrow(SettingsError);
    expect(() => validateSettings(input)).toThrow(message);
  });
});

describe('SettingsStore', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vpn-client-settings-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('should start from the defaults, keep updates across reopen, and reset', async () => {
    const store = await SettingsStore.open(dir);
    expect(store.get()).toEqual(DEFAULT_SETTINGS);
    await store.update({ pingTimeoutMs: 2500 });
    await store.update({ handshakeTimeoutMs: 4000 });
    const file = join(dir, SETTINGS_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      ...DEFAULT_SETTINGS,
      pingTimeoutMs: 2500,
      handshakeTimeoutMs: 4000,
    });
    const reopened = await SettingsStore.open(dir);
    expect(reopened.get()).toEqual({ ...DEFAULT_SETTINGS, pingTimeoutMs: 2500, handshakeTimeoutMs: 4000 });
    await expect(reopened.reset()).resolves.toEqual(DEFAULT_SETTINGS);
    expect((await SettingsStore.open(dir)).get()).toEqual(DEFAULT_SETTINGS);
  });

  it('should not lose either of two concurrent updates', async () => {
    const store = await SettingsStore.open(dir);
    await Promise.all([store.update({ pingTimeoutMs: 1 }), store.update({ handshakeTimeoutMs: 2 })]);
    expect((await SettingsStore.open(dir)).get()).toMatchObject({ pingTimeoutMs: 1, handshakeTimeoutMs: 2 });
  });

  it('should refuse to start on a damaged file, naming it', async () => {
    writeFileSync(join(dir, SETTINGS_FILE), '{"pingTimeoutMs": "soon"}');
    await expect(SettingsStore.open(dir)).rejects.toThrow(
      /configuration\.json: pingTimeoutMs.*delete the file/,
    );
  });
});
