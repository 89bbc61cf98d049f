import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { bearer, login } from '../support/http';
import {
  createDeviceWithCredentials,
  type DeviceWithCredentials,
  listOperations,
  waitForConnectionStatus,
} from '../support/device-factories';
import {
  type ApiProcess,
  type LoggedProcess,
  ProcessGroup,
  startApiProcess,
  startDeviceAgent,
} from '../support/processes';
import { eventually, holds, within } from '../support/eventually';

/** Embedded defaults: no DATABASE_URL, no MQTT_URL, so the process owns its Postgres server. */
const EMBEDDED = { DATABASE_URL: '', MQTT_URL: '' };

/** The embedded server's pid while it runs (postmaster.pid is removed by a clean stop). */
function postgresPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postgres', 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  return Number(readFileSync(file, 'utf8').split('\n')[0]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Postgres of `dataDir` stopped cleanly: no pid file, and no process left from one. */
function expectPostgresStopped(dataDir: string, seenPid: number | undefined): void {
  expect(postgresPid(dataDir)).toBeUndefined();
  if (seenPid !== undefined) expect(alive(seenPid)).toBe(false);
}

/**
 * One shutdown path for the service, whatever the moment of the signal: exit 0 within
 * seconds, every operation recorded, Postgres stopped cleanly (not by a library's exit hook
 * racing the service's own shutdown), the last log line written.
 */
describe('the API on SIGTERM', () => {
  const procs = new ProcessGroup();
  const dataDir = mkdtempSync(join(tmpdir(), 'vpncloud-e2e-shutdown-'));

  afterAll(async () => {
    await procs.stopAll();
    const pid = postgresPid(dataDir);
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  /** Starts on the shared data folder, sends SIGTERM once `moment` is reached, returns what happened. */
  async function terminateAt(moment: string): Promise<{ code: number | null; lines: string[] }> {
    const api = procs.api(await startApiProcess(EMBEDDED, { dataDir, waitReady: false }));
    await api.waitFor(moment, 90_000);
    const pidBefore = postgresPid(dataDir);
    api.child.kill('SIGTERM');
    const code = await within('the API to exit after SIGTERM', api.exited, 20_000);
    expectPostgresStopped(dataDir, pidBefore);
    return { code, lines: api.lines };
  }

  it.each([
    ['while the embedded Postgres starts', 'starting embedded PostgreSQL'],
    ['while the app initialises', 'embedded MQTT broker listening'],
  ])(
    'should exit 0 and leave Postgres stopped when the signal comes %s',
    async (_when, moment) => {
      const { code, lines } = await terminateAt(moment);
      expect(code).toBe(0);
      expect(lines[lines.length - 1]).toContain('start-up interrupted');
    },
    120_000,
  );

  it('should exit 0 once running, write its last log line, and start again on the same data', async () => {
    const { code, lines } = await terminateAt('device VPN cloud API listening');
    expect(code).toBe(0);
    expect(lines.some((l) => l.includes('"msg":"shutting down"'))).toBe(true);
    expect(lines[lines.length - 1]).toContain('shut down cleanly');

    const again = procs.api(await startApiProcess(EMBEDDED, { dataDir }));
    expect((await request(again.url).get('/health/ready')).status).toBe(200);
    const pid = postgresPid(dataDir);
    expect(await again.stop('SIGTERM')).toBe(0);
    expectPostgresStopped(dataDir, pid);
  }, 180_000);

  /** How the signal reaches the service. */
  const deliveries: Array<[string, boolean, (api: ApiProcess) => Promise<number | null>]> = [
    ['SIGTERM to the API process', false, (api) => api.stop('SIGTERM', 30_000)],
    [
      // A terminal's Ctrl-C: every process of the foreground job gets it, the embedded Postgres too.
      'Ctrl-C in a terminal (SIGINT to its whole process group)',
      true,
      async (api) => {
        process.kill(-(api.child.pid as number), 'SIGINT');
        return api.exited;
      },
    ],
  ];

  describe.each(deliveries)('with commands in flight, on %s', (_how, ownProcessGroup, signal) => {
    let api: ApiProcess;
    let token: string;
    let devices: DeviceWithCredentials[];
    let agents: LoggedProcess[];

    beforeAll(async () => {
      api = procs.api(await startApiProcess(EMBEDDED, { dataDir, ownProcessGroup }));
      token = await login(api);
      devices = await Promise.all([1, 2, 3, 4].map(() => createDeviceWithCredentials(api, token)));
      // Slow tunnels: every connect is still waiting for its device when the signal comes.
      agents = [];
      for (const d of devices) {
        agents.push(procs.agent(await startDeviceAgent(api, d, ['--connect-delay-ms', '30000'])));
      }
      for (const d of devices) await waitForConnectionStatus(api, token, '_', d.id, 'CONNECTED');
    }, 180_000);

    it('should answer every caller, record every operation and exit 0; no operation is RUNNING after a restart', async () => {
      const calls = devices.map((d) =>
        request(api.url)
          .post(`/v1/_/devices/${d.id}/vpn/_connect?timeout=60000`)
          .set(bearer(token))
          .then(
            (r) => ({ status: r.status, result: (r.body as { result?: string }).result }),
            (err: Error) => ({ status: 0, result: err.message }),
          ),
      );
      for (const d of devices) {
        await eventually(
          async () =>
            holds(
              'the connect operation to be RUNNING',
              await listOperations(api, token, '_', d.id),
              (ops) => ops[0]?.status === 'RUNNING',
            ),
          15_000,
          100,
        );
      }
      const pid = postgresPid(dataDir);
      expect(await within('the API to exit', signal(api), 30_000)).toBe(0);
      // Postgres stopped last, after the shutdown's own writes: none of them found it gone.
      expect(
        api.lines.filter((l) => /QueryFailedError|Connection terminated|terminating connection/.test(l)),
      ).toEqual([]);
      expectPostgresStopped(dataDir, pid);
      // Each caller got the documented answer before the server closed, not a dropped connection.
      expect(await Promise.all(calls)).toEqual(
        devices.map(() => ({ status: 503, result: 'SERVICE_UNAVAILABLE' })),
      );

      const restarted = procs.api(await startApiProcess(EMBEDDED, { dataDir }));
      // Nothing was left for the next start to clean up: the shutdown itself recorded every outcome.
      expect(restarted.lines.some((l) => l.includes('left running by a previous run'))).toBe(false);
      const newToken = await login(restarted);
      for (const d of devices) {
        const ops = await listOperations(restarted, newToken, '_', d.id);
        expect(ops.map((o) => [o.command, o.status])).toEqual([['connect', 'FAILED']]);
        expect(ops[0].endedOn).not.toBeNull();
      }
      expect(await restarted.stop('SIGTERM')).toBe(0);
      for (const agent of agents) await agent.stop();
    }, 180_000);
  });
});
