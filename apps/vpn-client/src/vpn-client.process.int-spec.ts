// The VPN client as a real process, as the end-to-end tests will start it: the JSON "listening"
// line with its URL (port 0), a clean exit on SIGTERM, the certificate kept across restarts, and
// exit code 2 with a message for a bad option.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ClientProcess, call, testInterfaceName, unreachableUrl } from '../test/helpers';
import { describeWhen } from '../../../test/support/prerequisites';

jest.setTimeout(120_000);

let stateDir: string;
const started: ClientProcess[] = [];

function startClient(args: string[], env: Record<string, string> = {}): ClientProcess {
  const proc = new ClientProcess(args, env);
  started.push(proc);
  return proc;
}

/** Chosen when the file loads: skipped (reported as such) without the tools, a failure in CI. */
const describeHere = describeWhen('VPN client process test', { tools: ['wg', 'ip'] });

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'vpn-client-proc-'));
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop(5000)));
  rmSync(stateDir, { recursive: true, force: true });
});

describeHere('vpn-client process', () => {
  it('should log its URL, serve on it, exit 0 on SIGTERM and keep its certificate across restarts', async () => {
    const args = [
      '--listen',
      '127.0.0.1:0',
      '--state-dir',
      stateDir,
      '--interface',
      testInterfaceName(),
      '--allow-origin',
      'https://portal.example.com',
    ];
    const api = await unreachableUrl();
    const first = startClient(args, { VPN_CLIENT_API: api });
    const listening = await first.waitForMessage('vpn-client listening');
    expect(listening.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(listening.url).not.toBe('https://127.0.0.1:0');
    expect(listening.allowedOrigins).toEqual(['https://portal.example.com']);
    expect((await call(`${String(listening.url)}/status`)).json).toMatchObject({ status: 'idle' });
    expect(await first.stop()).toBe(0);
    expect(first.lines.some((l) => l.includes('"shutting down"'))).toBe(true);

    const second = startClient(['--api', api, ...args]);
    const again = await second.waitForMessage('vpn-client listening');
    expect(again.fingerprint256).toBe(listening.fingerprint256);
    expect(second.lines.some((l) => l.includes('generated a self-signed TLS certificate'))).toBe(false);
    expect(await second.stop()).toBe(0);
  });

  it('should exit 2 with a message naming the bad option', async () => {
    const proc = startClient(['--api', 'https://cloud.example.com', '--listen', '0.0.0.0:9250']);
    expect(await proc.exited).toBe(2);
    expect(proc.lines.join('\n')).toMatch(/--listen must be a loopback address/);
    const help = startClient(['--help']);
    expect(await help.exited).toBe(0);
    expect(help.lines.join('\n')).toMatch(/--allow-origin/);
  });
});
