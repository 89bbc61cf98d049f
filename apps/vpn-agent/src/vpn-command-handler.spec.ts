import { DISCONNECTED_IP, encodeVpnProfile, StatusCodes, VpnProfile, VpnStatusReport } from '@app/protocol';

import type { FailMode } from './config';
import { SimulatedDriver } from './drivers/simulated.driver';
import { VpnCommandHandler } from './vpn-command-handler';
import { VpnStatusTracker } from './vpn-status-tracker';
import { createLogger } from '@app/edge';

const profile: VpnProfile = {
  type: 'wireguard',
  tunnelAddress: '10.200.0.7/16',
  serverEndpoint: 'vpn.example.com:51820',
  serverPublicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
  allowedIps: ['10.200.0.0/16'],
  dns: [],
  keepalive: 25,
};
const body = encodeVpnProfile(profile);

function setup(failMode: FailMode = 'none'): { handler: VpnCommandHandler; reports: VpnStatusReport[] } {
  const reports: VpnStatusReport[] = [];
  const driver = new SimulatedDriver(
    { connectDelayMs: 0, disconnectDelayMs: 0, failMode, announceKey: false },
    'dev-1',
  );
  const handler = new VpnCommandHandler(
    driver,
    new VpnStatusTracker('boot-1'),
    (r) => reports.push(r),
    createLogger('silent'),
  );
  return { handler, reports };
}

describe('VpnCommandHandler', () => {
  it('should connect, report connecting then connected, and answer 200 with the tunnel address', async () => {
    const { handler, reports } = setup();
    const outcome = await handler.handle('connect', body);
    expect(outcome).toEqual({
      code: 200,
      status: {
        connected: true,
        ipAddress: '10.200.0.7',
        status: 'connected',
        statusCode: '004',
        bootId: 'boot-1',
        seq: 2,
      },
    });
    expect(reports.map((r) => [r.status, r.statusCode, r.seq])).toEqual([
      ['connecting', StatusCodes.PENDING, 1],
      ['connected', StatusCodes.ACTIVE, 2],
    ]);
  });

  it('should answer a repeated connect with the same profile with 200 and no new report', async () => {
    const { handler, reports } = setup();
    await handler.handle('connect', body);
    const reordered = Buffer.from(JSON.stringify({ ...profile, keepalive: 25, type: 'wireguard' }));
    const again = await handler.handle('connect', reordered);
    expect(again.code).toBe(200);
    expect(again.status.seq).toBe(2);
    expect(reports).toHaveLength(2);
  });

  it('should replace the tunnel when a connect brings a different profile', async () => {
    const { handler } = setup();
    await handler.handle('connect', body);
    const moved = await handler.handle(
      'connect',
      encodeVpnProfile({ ...profile, tunnelAddress: '10.200.0.9/16' }),
    );
    expect(moved.status).toMatchObject({ connected: true, ipAddress: '10.200.0.9' });
  });

  it.each([
    ['no body', undefined],
    ['not JSON', Buffer.from('{')],
    ['an unsupported type', Buffer.from(JSON.stringify({ ...profile, type: 'openvpn' }))],
  ])(
    'should answer 400 with a message and leave the status alone for a profile with %s',
    async (_what, bad) => {
      const { handler, reports } = setup();
      const outcome = await handler.handle('connect', bad);
      expect(outcome.code).toBe(400);
      expect(outcome.exceptionMessage).toEqual(expect.any(String));
      expect(outcome.status).toMatchObject({ status: 'idle', seq: 0 });
      expect(reports).toHaveLength(0);
    },
  );

  it('should answer 404 for an unknown command', async () => {
    const { handler } = setup();
    expect(await handler.handle('EXEC/reboot', undefined)).toMatchObject({
      code: 404,
      exceptionMessage: 'unknown command "EXEC/reboot"',
    });
  });

  it('should answer 500 and report the error step code when the driver fails to connect', async () => {
    const { handler, reports } = setup('connect');
    const outcome = await handler.handle('connect', body);
    expect(outcome.code).toBe(500);
    expect(outcome.exceptionMessage).toContain('simulated failure');
    expect(outcome.status).toMatchObject({
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'error',
      statusCode: StatusCodes.HANDSHAKE_TIMEOUT,
    });
    expect(reports.at(-1)).toEqual(outcome.status);
  });

  it('should disconnect to idle with code done, and answer a disconnect when idle with 200', async () => {
    const { handler, reports } = setup();
    expect((await handler.handle('disconnect', undefined)).code).toBe(200);
    expect(reports).toHaveLength(0);
    await handler.handle('connect', body);
    const outcome = await handler.handle('disconnect', undefined);
    expect(outcome.status).toMatchObject({
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'idle',
      statusCode: StatusCodes.DONE,
    });
    expect(reports.map((r) => r.status)).toEqual(['connecting', 'connected', 'disconnecting', 'idle']);
  });

  it('should report a failed teardown as an error with the tunnel still up', async () => {
    const { handler } = setup('disconnect');
    await handler.handle('connect', body);
    const outcome = await handler.handle('disconnect', undefined);
    expect(outcome).toMatchObject({
      code: 500,
      status: {
        connected: true,
        ipAddress: '10.200.0.7',
        status: 'error',
        statusCode: StatusCodes.TEARDOWN_FAILED,
      },
    });
  });

  it('should answer status with the latest report without changing it', async () => {
    const { handler, reports } = setup();
    await handler.handle('connect', body);
    expect(await handler.handle('status', undefined)).toEqual({ code: 200, status: reports[1] });
  });

  it('should take the tunnel down and report idle on shutdown', async () => {
    const { handler, reports } = setup();
    await handler.handle('connect', body);
    await handler.shutdown();
    expect(reports.at(-1)).toMatchObject({ status: 'idle', connected: false, seq: 3 });
  });
});
