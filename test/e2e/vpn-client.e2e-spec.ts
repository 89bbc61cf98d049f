/**
 * The engineer's local VPN client (IXON's VPN Client API) end to end: a real vpn-client process
 * whose tunnel lives in an engineer namespace, driven only through its local HTTPS API and status
 * WebSocket, against the real API, a real gateway and real agents. Needs root and the WireGuard
 * tools (see test/support/tunnel-lab.ts).
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { callClient, ClientStatusSocket, type ClientStatusBody } from '../support/local-client';
import { inNs, pingEventually, unreachable, wgPeers } from '../support/netns';
import { startClientProcess, type LoggedProcess } from '../support/processes';
import { TunnelLab, type TunnelDevice } from '../support/tunnel-lab';
import { eventually, holds } from '../support/eventually';
import { TUNNEL_NEEDS, describeWhen } from '../support/prerequisites';
import { bearer } from '../support/http';
import { type CreatedUser, createUser } from '../support/factories';

const PORTAL = 'https://portal.example.test';

describeWhen('vpn-client e2e tests', TUNNEL_NEEDS)("the engineer's local VPN client", () => {
  let lab: TunnelLab | undefined;
  let a1: TunnelDevice;
  let a2: TunnelDevice;
  let b1: TunnelDevice;
  let engineerNs: string;
  let client: LoggedProcess & { url: string };
  let clientIf: string;
  let operator: CreatedUser;
  let socket: ClientStatusSocket;
  /** A registered device whose agent never comes online. */
  let offline: { id: string };

  const connectHeaders = (controller: string, token: string) => ({
    'Api-Version': '2',
    'VPN-Client-Controller-Identifier': controller,
    'Api-Access-Token': token,
  });
  const status = async (): Promise<ClientStatusBody> =>
    (await callClient(`${client.url}/status`)).body as unknown as ClientStatusBody;
  const until = (what: string, done: (s: ClientStatusBody) => boolean, timeoutMs = 60_000) =>
    eventually(async () => holds(what, await status(), done), timeoutMs, 100);

  beforeAll(async () => {
    lab = await TunnelLab.start();
    a1 = await lab.device(lab.tenantA, 'ca1');
    a2 = await lab.device(lab.tenantA, 'ca2');
    b1 = await lab.device(lab.tenantB, 'cb1');
    for (const [tenant, d] of [
      [lab.tenantA, a2],
      [lab.tenantB, b1],
    ] as const) {
      expect((await lab.command(tenant, d)).status).toBe(200);
    }
    engineerNs = await lab.engineer('ceng');
    clientIf = lab.net.name('wgc');
    lab.net.track(engineerNs, clientIf);
    const stateDir = join(lab.net.workDir, 'client');
    mkdirSync(stateDir);
    client = lab.procs.agent(
      await startClientProcess({
        api: lab.api.url,
        stateDir,
        interfaceName: clientIf,
        netns: engineerNs,
        args: ['--allow-origin', PORTAL],
      }),
    );
    operator = await createUser(lab.api, lab.rootToken, lab.tenantA.account.id, 'operator');
    const created = await request(lab.api.url)
      .post('/v1/_/devices')
      .set(bearer(lab.tenantA.admin.token))
      .send({ clientId: `never-online-${randomUUID().slice(0, 8)}` });
    offline = { id: created.body.id as string };
    socket = new ClientStatusSocket(client.url);
    await socket.opened;
  }, 240_000);

  afterAll(async () => {
    socket?.close();
    await lab?.stop();
  }, 120_000);

  it('should describe itself with IXON discovery links and be idle', async () => {
    const discovery = await callClient(`${client.url}/`);
    expect(discovery.status).toBe(200);
    const rels = (discovery.body.links as Array<{ rel: string }>).map((l) => l.rel).sort();
    expect(rels).toEqual(
      [
        'Configuration',
        'ConfigurationReset',
        'Connect',
        'ControllerClosed',
        'Disconnect',
        'Discovery',
        'Status',
        'StatusWebSocket',
      ].sort(),
    );
    expect(await status()).toMatchObject({ status: 'idle', activeRequest: '' });
  });

  it("should connect to a device of the engineer's account: pushes 002 then 004, and the device answers pings", async () => {
    const controller = randomUUID();
    const res = await callClient(`${client.url}/connect`, {
      method: 'POST',
      headers: connectHeaders(controller, operator.token),
      body: { agentId: a1.id, companyId: lab!.tenantA.account.id },
    });
    expect([200, 202]).toContain(res.status);
    const up = await until(
      'the client to be connected',
      (s) => s.status === 'connected' || s.status === 'error',
    );
    expect(up).toMatchObject({ status: 'connected', statusCode: '004', deviceAddress: a1.tunnelAddress });
    const codes = socket.pushed.map((p) => p.statusCode);
    expect(codes).toContain('002');
    expect(codes.indexOf('002')).toBeLessThan(codes.lastIndexOf('004'));
    await pingEventually(engineerNs, a1.tunnelAddress);

    // With its AllowedIPs and routes widened, the engineer still reaches nothing else.
    await lab!.net.widen(engineerNs, clientIf, lab!.gatewayKey);
    await pingEventually(engineerNs, a1.tunnelAddress);
    expect(await unreachable(engineerNs, a2.tunnelAddress)).toBe(true);
    expect(await unreachable(engineerNs, b1.tunnelAddress)).toBe(true);

    // Another controller cannot take over the active request.
    const other = await callClient(`${client.url}/connect`, {
      method: 'POST',
      headers: connectHeaders(randomUUID(), operator.token),
      body: { agentId: a2.id, companyId: lab!.tenantA.account.id },
    });
    expect(other.status).toBe(409);
    expect(other.body).toMatchObject({ activeRequest: { controllerIdentifier: controller, agentId: a1.id } });
  });

  it('should refuse a foreign Host, a foreign Origin and a foreign WebSocket Origin with 403', async () => {
    const port = new URL(client.url).port;
    expect(
      (await callClient(`${client.url}/status`, { headers: { Host: `evil.example:${port}` } })).status,
    ).toBe(403);
    expect(
      (
        await callClient(`${client.url}/disconnect`, {
          method: 'POST',
          headers: { Origin: 'https://evil.example' },
        })
      ).status,
    ).toBe(403);
    expect((await callClient(`${client.url}/status`, { headers: { Origin: PORTAL } })).status).toBe(200);
    // The refused disconnect changed nothing.
    expect((await status()).status).toBe('connected');
  });

  it('should disconnect for anyone: the tunnel goes, and the session is ended in the audit trail', async () => {
    const before = await wgPeers(lab!.gatewayNs, lab!.gatewayIf);
    const res = await callClient(`${client.url}/disconnect`, { method: 'POST' });
    expect(res.status).toBe(200);
    await until('the client to be idle', (s) => s.status === 'idle');
    expect(await unreachable(engineerNs, a1.tunnelAddress)).toBe(true);
    await expect(inNs(engineerNs, 'ip', ['link', 'show', 'dev', clientIf])).rejects.toThrow();
    const audit = await eventually(
      async () =>
        holds(
          'the session to be ended in the audit trail',
          (await (
            await request(lab!.api.url)
              .get(`/v1/_/vpn/sessions?deviceId=${a1.id}`)
              .set(bearer(lab!.tenantA.admin.token))
          ).body.items) as Array<{ endReason: string | null; userId: string }>,
          (items) => items.length > 0 && items.every((s) => s.endReason !== null),
        ),
      15_000,
      100,
    );
    expect(audit[0]).toMatchObject({ endReason: 'closed', userId: operator.id });
    expect((await wgPeers(lab!.gatewayNs, lab!.gatewayIf)).length).toBe(before.length - 1);
  });

  it.each([
    [
      'an unknown device',
      () => ({ agentId: randomUUID(), companyId: lab!.tenantA.account.id }),
      () => operator.token,
      '210',
    ],
    [
      'a device of another account',
      () => ({ agentId: b1.id, companyId: lab!.tenantB.account.id }),
      () => operator.token,
      '130',
    ],
    [
      'a device that never comes online',
      () => ({ agentId: offline.id, companyId: lab!.tenantA.account.id }),
      () => operator.token,
      '220',
    ],
    [
      'a wrong access token',
      () => ({ agentId: a1.id, companyId: lab!.tenantA.account.id }),
      () => 'not-a-token',
      '120',
    ],
  ])(
    'should end in error with the failing step code for %s and leave nothing behind',
    async (_what, body, token, code) => {
      const controller = randomUUID();
      const res = await callClient(`${client.url}/connect`, {
        method: 'POST',
        headers: connectHeaders(controller, token()),
        body: body(),
      });
      expect([200, 202]).toContain(res.status);
      const failed = await until('the connect to fail', (s) => s.status === 'error');
      expect(failed.statusCode).toBe(code);
      expect(failed.steps.some((s) => s.code === code && (s.message ?? '').length > 0)).toBe(true);
      await expect(inNs(engineerNs, 'ip', ['link', 'show', 'dev', clientIf])).rejects.toThrow();
      const active = await request(lab!.api.url)
        .get('/v1/_/vpn/sessions?active=true')
        .set(bearer(lab!.tenantA.admin.token));
      expect(active.body.items).toEqual([]);
      expect((await callClient(`${client.url}/disconnect`, { method: 'POST' })).status).toBe(200);
      await until('the client to be idle again', (s) => s.status === 'idle');
    },
  );
});
