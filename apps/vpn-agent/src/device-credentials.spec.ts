import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadCredentialsFile, saveCredentialsFile } from './device-credentials';
import { ConfigError } from '@app/edge';

const dir = mkdtempSync(join(tmpdir(), 'vpn-agent-creds-'));
const a = { clientId: 'sim-1', username: 'u1', password: 'p1' };
const b = { clientId: 'sim-2', username: 'u2', password: 'p2' };

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('credentials files', () => {
  it('should read a JSON array and JSON lines alike', async () => {
    await expect(loadCredentialsFile(file('array.json', JSON.stringify([a, b])))).resolves.toEqual([a, b]);
    await expect(
      loadCredentialsFile(file('lines.jsonl', `${JSON.stringify(a)}\n\n${JSON.stringify(b)}\n`)),
    ).resolves.toEqual([a, b]);
  });

  it('should name the entry that lacks a field or has an unusable client id', async () => {
    await expect(
      loadCredentialsFile(file('bad.json', JSON.stringify([a, { clientId: 'x' }]))),
    ).rejects.toThrow('entry 2 needs clientId, username and password');
    await expect(
      loadCredentialsFile(file('slash.json', JSON.stringify([{ ...a, clientId: 'a/b' }]))),
    ).rejects.toThrow(ConfigError);
    await expect(loadCredentialsFile(join(dir, 'missing.json'))).rejects.toThrow('--credentials');
  });

  it('should save owner-only JSON lines that load back', async () => {
    const path = join(dir, 'saved.jsonl');
    await saveCredentialsFile(path, [a, b]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await expect(loadCredentialsFile(path)).resolves.toEqual([a, b]);
  });
});
