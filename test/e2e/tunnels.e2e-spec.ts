/**
 * Real tunnels, end to end: the API (embedded broker) and a real vpn-gateway process, real agents
 * with the WireGuard driver, engineers' computers with plain wireguard-go, each in a network
 * namespace on one underlay bridge (198.18.0.0/24); tunnels in 100.64.0.0/10. Packets, not
 * status flags, decide: a device pings its gateway, an engineer pings a device, and what must be
 * unreachable is tested after widening the sender's own AllowedIPs and routes to the whole tunnel
 * range, so that the gateway's rules are what is tested. Needs root and the WireGuard tools.
 */
import request from 'supertest';
import { inNs, pingEventually, unreachable, wgKeyPair, wgPeers } from '../support/netns';
import type { ApiProcess } from '../support/processes';
import { GW_PORT, GW_UNDERLAY, TunnelLab, type TunnelDevice } from '../support/tunnel-lab';
import { eventually, holds } from '../support/eventually';
import { TUNNEL_NEEDS, describeWhen } from '../support/prerequisites';
import { bearer, expectError } from '../support/http';
import { createUser, suffix, type Tenant } from '../support/factories';
import { createDevice, type DeviceBody, getVpnStatus } from '../support/device-factories';

describeWhen('real tunnel e2e tests', TUNNEL_NEEDS)('real tunnels through a cloud-managed gateway', () => {
  let lab: TunnelLab | undefined;
  let api: ApiProcess;
  let rootToken: string;
  let tenantA: Tenant;
  let tenantB: Tenant;
  let gatewayId: string;
  let gatewayKey: string;
  let gatewayNs: string;
  let gatewayIf: string;
  let a1: TunnelDevice;
  let a2: TunnelDevice;
  let b1: TunnelDevice;
  let engineerNs: string;

  const connect = (tenant: Tenant, d: DeviceBody, path: '_connect' | '_disconnect' = '_connect') =>
    lab!.command(tenant, d, path);
  const gatewayAddressOf = (d: DeviceBody) => lab!.gatewayAddressOf(d);

  beforeAll(async () => {
    lab = await TunnelLab.start();
    ({ api, rootToken, tenantA, tenantB, gatewayId, gatewayKey, gatewayNs, gatewayIf } = lab);
    a1 = await lab.device(tenantA, 'a1');
    a2 = await lab.device(tenantA, 'a2');
    b1 = await lab.device(tenantB, 'b1');
    engineerNs = await lab.engineer();
  }, 240_000);

  afterAll(() => lab?.stop(), 120_000);

  describe('devices', () => {
    it('should bring up a tunnel that carries packets: the device pings its gateway, and the gateway reports the handshake', async () => {
      const res = await connect(tenantA, a1);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        connected: true,
        ipAddress: a1.tunnelAddress,
        status: 'connected',
        statusCode: '004',
        deviceConnection: 'CONNECTED',
        tunnel: { gatewayId, gatewayAddress: gatewayAddressOf(a1) },
      });
      await pingEventually(a1.ns, gatewayAddressOf(a1));
      const status = await eventually(
        async () =>
          holds(
            'the gateway to report the handshake',
            await getVpnStatus(api, tenantA.admin.token, '_', a1.id),
            (s) => s.tunnel?.lastHandshakeOn != null && s.tunnel.rxBytes > 0,
          ),
        15_000,
        100,
      );
      expect(new Date(status.tunnel!.lastHandshakeOn!).getTime()).toBeGreaterThan(Date.now() - 60_000);
    });

    it('should drop packets between two devices of one account and across accounts, even when the senders route the whole tunnel range', async () => {
      for (const [tenant, d] of [
        [tenantA, a2],
        [tenantB, b1],
      ] as const) {
        expect((await connect(tenant, d)).status).toBe(200);
        await pingEventually(d.ns, gatewayAddressOf(d));
      }
      for (const d of [a1, a2, b1]) await lab!.net.widen(d.ns, d.ifname, gatewayKey);
      // The widened routes work: each device still reaches its gateway.
      await pingEventually(a1.ns, gatewayAddressOf(a1));
      expect(await unreachable(a1.ns, a2.tunnelAddress)).toBe(true);
      expect(await unreachable(a2.ns, a1.tunnelAddress)).toBe(true);
      expect(await unreachable(b1.ns, a1.tunnelAddress)).toBe(true);
      expect(await unreachable(a1.ns, b1.tunnelAddress)).toBe(true);
    });

    it('should take the peer off the gateway on _disconnect, and put it back on the next _connect', async () => {
      const key = (await request(api.url).get(`/v1/_/devices/${a2.id}`).set(bearer(tenantA.admin.token))).body
        .vpnPublicKey as string;
      expect(await wgPeers(gatewayNs, gatewayIf)).toContain(key);
      const down = await connect(tenantA, a2, '_disconnect');
      expect(down.status).toBe(200);
      expect(down.body).toMatchObject({ connected: false, ipAddress: '0.0.0.0', tunnel: null });
      expect(await wgPeers(gatewayNs, gatewayIf)).not.toContain(key);
      expect((await connect(tenantA, a2)).status).toBe(200);
      expect(await wgPeers(gatewayNs, gatewayIf)).toContain(key);
      await pingEventually(a2.ns, gatewayAddressOf(a2));
    });

    it('should restore every peer from the cloud when the gateway restarts from nothing, with no API call', async () => {
      // A crash of the whole gateway host: the process and its interface are gone.
      await lab!.gateway.stop('SIGKILL');
      await lab!.net.removeInterface(gatewayNs, gatewayIf);
      expect(await unreachable(a1.ns, gatewayAddressOf(a1))).toBe(true);
      await lab!.startGateway();
      // Peers whose last endpoint the gateway had stored get a handshake from it at once; a peer
      // added moments before the crash (its endpoint not yet stored) re-handshakes by itself
      // (WireGuard's rekey timeout, ~15 s).
      for (const d of [a1, a2, b1]) await pingEventually(d.ns, gatewayAddressOf(d), 30_000);
      // Isolation holds after the restore too.
      expect(await unreachable(a1.ns, a2.tunnelAddress)).toBe(true);
    });
  });

  describe('engineer sessions (REST)', () => {
    it("should let an engineer's computer reach exactly the session's device, and nothing once the session is deleted", async () => {
      const operator = await createUser(api, rootToken, tenantA.account.id, 'operator');
      const keys = wgKeyPair();
      const res = await request(api.url)
        .post(`/v1/_/devices/${a1.id}/vpn/sessions`)
        .set(bearer(operator.token))
        .send({ publicKey: keys.publicKey });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        deviceId: a1.id,
        gatewayId,
        serverEndpoint: `${GW_UNDERLAY}:${GW_PORT}`,
        serverPublicKey: gatewayKey,
        allowedIps: [`${a1.tunnelAddress}/32`],
        pingInterval: 2,
      });
      expect(res.body.tunnelAddress).toMatch(/^100\.96\.0\.\d+$/);
      expect(await wgPeers(gatewayNs, gatewayIf)).toContain(keys.publicKey);

      const ifname = lab!.net.name('wge');
      await lab!.net.wgInterface({
        ns: engineerNs,
        ifname,
        privateKey: keys.privateKey,
        address: res.body.tunnelAddress as string,
        peerPublicKey: gatewayKey,
        endpoint: res.body.serverEndpoint as string,
        allowedIps: res.body.allowedIps as string[],
      });
      const keepAlive = setInterval(() => {
        void request(api.url)
          .post(`/v1/_/devices/${a1.id}/vpn/sessions/${res.body.id}/_ping`)
          .send({ pingToken: res.body.pingToken });
      }, 1000);
      try {
        await pingEventually(engineerNs, a1.tunnelAddress);
        await lab!.net.widen(engineerNs, ifname, gatewayKey);
        await pingEventually(engineerNs, a1.tunnelAddress);
        expect(await unreachable(engineerNs, a2.tunnelAddress)).toBe(true);
        expect(await unreachable(engineerNs, b1.tunnelAddress)).toBe(true);

        // A ping with a wrong token is refused and changes nothing.
        const wrong = await request(api.url)
          .post(`/v1/_/devices/${a1.id}/vpn/sessions/${res.body.id}/_ping`)
          .send({ pingToken: 'not-the-token' });
        expectError(wrong, 404, 'NOT_FOUND');

        const deleted = await request(api.url)
          .delete(`/v1/_/devices/${a1.id}/vpn/sessions/${res.body.id}`)
          .set(bearer(operator.token));
        expect(deleted.status).toBe(204);
        expect(await wgPeers(gatewayNs, gatewayIf)).not.toContain(keys.publicKey);
        expect(await unreachable(engineerNs, a1.tunnelAddress)).toBe(true);
      } finally {
        clearInterval(keepAlive);
        await lab!.net.removeInterface(engineerNs, ifname);
      }
      const audit = await request(api.url)
        .get(`/v1/_/vpn/sessions?deviceId=${a1.id}`)
        .set(bearer(tenantA.admin.token));
      expect(audit.status).toBe(200);
      const row = (audit.body.items as Array<Record<string, unknown>>).find((s) => s.id === res.body.id);
      expect(row).toMatchObject({ kind: 'device', userId: operator.id, gatewayId, endReason: 'closed' });
      expect(row?.endedOn).not.toBeNull();
      expect(row?.rxBytes as number).toBeGreaterThan(0);
      expect(row?.txBytes as number).toBeGreaterThan(0);
      // Another tenant sees nothing of it.
      const foreign = await request(api.url)
        .get(`/v1/${tenantA.account.id}/vpn/sessions`)
        .set(bearer(tenantB.admin.token));
      expect(foreign.status).toBe(403);
    });

    it('should end a session whose client goes silent and take its peer off the gateway', async () => {
      const keys = wgKeyPair();
      const res = await request(api.url)
        .post(`/v1/_/devices/${a1.id}/vpn/sessions`)
        .set(bearer(tenantA.admin.token))
        .send({ publicKey: keys.publicKey });
      expect(res.status).toBe(201);
      expect(await wgPeers(gatewayNs, gatewayIf)).toContain(keys.publicKey);
      // Nobody pings and no handshake comes: 3 × the 2 s ping interval later the sweep ends it.
      const ended = await eventually(
        async () =>
          holds(
            'the silent session to end',
            (await (
              await request(api.url)
                .get(`/v1/_/vpn/sessions?deviceId=${a1.id}`)
                .set(bearer(tenantA.admin.token))
            ).body.items) as Array<{ id: string; endReason: string | null }>,
            (items) => items.find((s) => s.id === res.body.id)?.endReason === 'expired',
          ),
        20_000,
        100,
      );
      expect(ended.find((s) => s.id === res.body.id)?.endReason).toBe('expired');
      await eventually(
        async () =>
          holds(
            'the expired peer to leave the gateway',
            await wgPeers(gatewayNs, gatewayIf),
            (peers) => !peers.includes(keys.publicKey),
          ),
        15_000,
        100,
      );
    });

    it('should refuse a session to a device whose VPN is down, a malformed key, and another tenant', async () => {
      const down = await tunnelDeviceWithoutConnect();
      const refused = await request(api.url)
        .post(`/v1/_/devices/${down.id}/vpn/sessions`)
        .set(bearer(tenantA.admin.token))
        .send({ publicKey: wgKeyPair().publicKey });
      expectError(refused, 409, 'VPN_NOT_CONNECTED');
      const malformed = await request(api.url)
        .post(`/v1/_/devices/${a1.id}/vpn/sessions`)
        .set(bearer(tenantA.admin.token))
        .send({ publicKey: 'not-a-key' });
      expectError(malformed, 400, 'INVALID_ARGUMENT');
      const foreign = await request(api.url)
        .post(`/v1/${tenantA.account.id}/devices/${a1.id}/vpn/sessions`)
        .set(bearer(tenantB.admin.token))
        .send({ publicKey: wgKeyPair().publicKey });
      expectError(foreign, 403, 'FORBIDDEN');
      const active = await request(api.url)
        .get(`/v1/_/vpn/sessions?active=true&deviceId=${down.id}`)
        .set(bearer(tenantA.admin.token));
      expect(active.body.items).toEqual([]);
    });
  });

  /** A registered device of tenant A that never connected its VPN. */
  function tunnelDeviceWithoutConnect(): Promise<DeviceBody> {
    return createDevice(api, tenantA.admin.token, '_', { clientId: `dev-idle-${suffix()}` });
  }

  describe('the FendVPN client flow', () => {
    it("should sign in, list locations, connect a site session that reaches the account's devices and nothing of another account", async () => {
      const password = `pw-${suffix()}${suffix()}`;
      const username = `fend-${suffix()}`;
      expect(
        (
          await request(api.url)
            .post(`/v1/${tenantA.account.id}/users`)
            .set(bearer(rootToken))
            .send({ username, password, role: 'operator' })
        ).status,
      ).toBe(201);
      const signin = await request(api.url)
        .post('/api/client/signin')
        .send({
          project: tenantA.account.name,
          client_platform: 'linux',
          client_version: '1.0.0',
          device_id: 'laptop-1',
          auth_type: 'password',
          auth_info: `${username}:${password}`,
        });
      expect(signin.status).toBe(200);
      expect(signin.body.discovery_addresses).toEqual([expect.stringMatching(/^http:\/\//)]);
      const auth = bearer(signin.body.access_token as string);

      const wrongProject = await request(api.url)
        .post('/api/client/signin')
        .send({
          project: tenantB.account.name,
          client_platform: 'linux',
          client_version: '1.0.0',
          device_id: 'laptop-1',
          auth_type: 'password',
          auth_info: `${username}:${password}`,
        });
      expectError(wrongProject, 401, 'AUTH_FAILED');

      const locations = await request(api.url).get('/api/client/locations').set(auth);
      expect(locations.status).toBe(200);
      expect(locations.body).toEqual([{ id: gatewayId, name: expect.any(String), labels: ['online'] }]);
      const credentials = await request(api.url)
        .get(`/api/client/credentials?location=${gatewayId}`)
        .set(auth);
      expect(credentials.body).toEqual([{ id: gatewayId, connection_addresses: [expect.any(String)] }]);

      const keys = wgKeyPair();
      const body = {
        type: 'wireguard',
        info_wireguard: { public_key: keys.publicKey },
        identifiers: { installation_id: 'inst-1', session_id: 'sess-1' },
        location: gatewayId,
      };
      const connected = await request(api.url).post('/api/client/connect').set(auth).send(body);
      expect(connected.status).toBe(200);
      const info = connected.body.info_wireguard as Record<string, unknown>;
      expect(info).toMatchObject({
        server_public_key: gatewayKey,
        server_ipv4: GW_UNDERLAY,
        server_port: GW_PORT,
        keepalive: 1,
        dns: [],
        ping_interval: 2,
      });
      const subnetA = `${a1.tunnelAddress.split('.').slice(0, 3).join('.')}.0/24`;
      expect(info.allowed_ips).toEqual([subnetA]);

      // The same key again, from another installation: refused.
      const again = await request(api.url)
        .post('/api/client/connect')
        .set(auth)
        .send({ ...body, identifiers: { installation_id: 'inst-2', session_id: 'sess-2' } });
      expectError(again, 409, 'ENTRY_EXISTS');

      const ifname = lab!.net.name('wgf');
      await lab!.net.wgInterface({
        ns: engineerNs,
        ifname,
        privateKey: keys.privateKey,
        address: info.tunnel_ipv4 as string,
        peerPublicKey: info.server_public_key as string,
        endpoint: `${info.server_ipv4 as string}:${info.server_port as number}`,
        allowedIps: info.allowed_ips as string[],
      });
      const keepAlive = setInterval(() => {
        void request(api.url)
          .post('/api/client/ping')
          .set(auth)
          .send({ installation_id: 'inst-1', session_id: 'sess-1' });
      }, 1000);
      try {
        await pingEventually(engineerNs, a1.tunnelAddress);
        await pingEventually(engineerNs, a2.tunnelAddress);
        await lab!.net.widen(engineerNs, ifname, gatewayKey);
        expect(await unreachable(engineerNs, b1.tunnelAddress)).toBe(true);
        const ping = await request(api.url)
          .post('/api/client/ping')
          .set(auth)
          .send({ installation_id: 'inst-1', session_id: 'sess-1' });
        expect(ping.status).toBe(204);

        const disconnected = await request(api.url)
          .post('/api/client/disconnect')
          .set(auth)
          .send({ installation_id: 'inst-1', session_id: 'sess-1' });
        expect(disconnected.status).toBe(204);
        expect(await unreachable(engineerNs, a1.tunnelAddress)).toBe(true);
        const outdated = await request(api.url)
          .post('/api/client/ping')
          .set(auth)
          .send({ installation_id: 'inst-1', session_id: 'sess-1' });
        expectError(outdated, 404, 'NOT_FOUND');
      } finally {
        clearInterval(keepAlive);
        await lab!.net.removeInterface(engineerNs, ifname);
      }
      const audit = await request(api.url)
        .get('/v1/_/vpn/sessions?kind=site')
        .set(bearer(tenantA.admin.token));
      expect(audit.body.items[0]).toMatchObject({ kind: 'site', gatewayId, endReason: 'closed' });
    });
  });

  describe('the device side after a disconnect', () => {
    it("should end the device's sessions when its VPN is disconnected", async () => {
      const keys = wgKeyPair();
      const res = await request(api.url)
        .post(`/v1/_/devices/${b1.id}/vpn/sessions`)
        .set(bearer(tenantB.admin.token))
        .send({ publicKey: keys.publicKey });
      expect(res.status).toBe(201);
      expect((await connect(tenantB, b1, '_disconnect')).status).toBe(200);
      const sessions = await eventually(
        async () =>
          holds(
            'the session to end with the device',
            (await (
              await request(api.url)
                .get(`/v1/_/vpn/sessions?deviceId=${b1.id}`)
                .set(bearer(tenantB.admin.token))
            ).body.items) as Array<{ id: string; endReason: string | null }>,
            (items) => items.find((s) => s.id === res.body.id)?.endReason != null,
          ),
        15_000,
        100,
      );
      expect(sessions.find((s) => s.id === res.body.id)?.endReason).toBe('device_disconnected');
      expect(await wgPeers(gatewayNs, gatewayIf)).not.toContain(keys.publicKey);
      expect(await inNs(gatewayNs, 'wg', ['show', gatewayIf, 'peers'])).not.toContain(keys.publicKey);
    });
  });
});
