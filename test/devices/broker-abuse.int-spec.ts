import { connect as tcpConnect, type Socket } from 'node:net';
import type { MqttClient } from 'mqtt';
import { Topics } from '@app/protocol';
import { eventually } from '../support/eventually';
import {
  closed,
  connectDevice,
  createDevice,
  endAll,
  issueCredentials,
  type DeviceCredentials,
} from '../support/device-factories';
import { createTenant, suffix, type Tenant } from '../support/factories';
import { login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

const LIMITS = {
  MQTT_MAX_PACKET_BYTES: String(64 * 1024),
  MQTT_MAX_CONNECT_BYTES: String(4 * 1024),
  MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS: '4',
  MQTT_CONNECT_TIMEOUT_MS: '1500',
};

/** An MQTT fixed header declaring `remaining` bytes: what an attacker sends before streaming them. */
function fixedHeader(type: number, remaining: number): Buffer {
  const bytes = [type];
  let n = remaining;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

const whenClosed = (socket: Socket): Promise<void> =>
  socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));

/**
 * The embedded broker against clients that do not play by the rules: packet sizes bounded before
 * and after authentication, unauthenticated connections capped per address and timed out. The
 * limits are set small here (they are configurable); an honest device still gets in.
 */
describe('the embedded broker under abuse', () => {
  let api: TestApi;
  let tenant: Tenant;
  let port: number;
  const sockets: Socket[] = [];
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    api = await startTestApi(LIMITS, { embeddedBroker: true });
    tenant = await createTenant(api, await login(api));
    port = Number(new URL(api.mqttUrl).port);
  });

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await endAll(...clients);
    await api?.stop();
  });

  async function device(): Promise<DeviceCredentials> {
    const d = await createDevice(api, tenant.admin.token);
    return issueCredentials(api, tenant.admin.token, '_', d.id);
  }

  it('should close a connection that declares a 100 MB CONNECT on its first bytes, before buffering it', async () => {
    const socket = await open(port);
    sockets.push(socket);
    let written = 0;
    socket.on('error', () => undefined);
    socket.write(fixedHeader(0x10, 100 * 1024 * 1024));
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    // Stream the announced body until the broker hangs up; bounded at 100 MB.
    const streaming = (async () => {
      while (!socket.destroyed && written < 100 * 1024 * 1024) {
        written += chunk.length;
        if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
    })();
    await whenClosed(socket);
    await streaming;
    // What the kernel buffers aside, the broker took a few chunks at most, not 100 MB.
    expect(written).toBeLessThan(8 * 1024 * 1024);
  });

  it('should close an authenticated device that publishes a packet over the limit', async () => {
    const creds = await device();
    const client = await connectDevice(api, creds);
    clients.push(client);
    const gone = closed(client);
    client.publish(Topics.status(creds.account, creds.clientId), Buffer.alloc(100 * 1024), { qos: 0 });
    await gone;
    // Within the limit, the same device is welcome again.
    const again = await connectDevice(api, creds);
    clients.push(again);
    await again.publishAsync(Topics.status(creds.account, creds.clientId), Buffer.alloc(32 * 1024), {
      qos: 1,
    });
  });

  it('should refuse more unauthenticated connections from one address than allowed, and time the silent ones out', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => open(port)));
    sockets.push(...held);
    for (const s of held) s.on('error', () => undefined);
    // The fifth silent connection from 127.0.0.1 is closed at once.
    const extra = await open(port);
    sockets.push(extra);
    extra.on('error', () => undefined);
    await whenClosed(extra);
    expect(held.every((s) => !s.destroyed)).toBe(true);
    // The four that never send a CONNECT are closed after the connect timeout, freeing their places.
    await Promise.all(held.map(whenClosed));
    const creds = await device();
    const client = await eventually(() => connectDevice(api, creds), 5000);
    clients.push(client);
    expect(client.connected).toBe(true);
  });

  it("should keep two tenants' devices with the same clientId online together in the {account}:{clientId} form", async () => {
    const other = await createTenant(api, await login(api));
    const clientId = `shared-gw-${suffix()}`;
    const mine = await issueCredentials(
      api,
      tenant.admin.token,
      '_',
      (await createDevice(api, tenant.admin.token, '_', { clientId })).id,
    );
    const theirs = await issueCredentials(
      api,
      other.admin.token,
      '_',
      (await createDevice(api, other.admin.token, '_', { clientId })).id,
    );
    const a = await connectDevice(api, mine, { clientId: `${mine.account}:${clientId}` });
    clients.push(a);
    const aGone = closed(a);
    let aClosed = false;
    void aGone.then(() => (aClosed = true));
    // The other tenant's device, in either form, neither is refused nor takes A's session.
    const full = await connectDevice(api, theirs, { clientId: `${theirs.account}:${clientId}` });
    clients.push(full);
    await full.endAsync();
    const plain = await connectDevice(api, theirs);
    clients.push(plain);
    await a.publishAsync(Topics.status(mine.account, clientId), Buffer.alloc(0), { qos: 1 });
    expect(a.connected && plain.connected && !aClosed).toBe(true);
    // Nobody may use A's full client id with other credentials.
    await expect(connectDevice(api, theirs, { clientId: `${mine.account}:${clientId}` })).rejects.toThrow();
    expect(a.connected && !aClosed).toBe(true);
  });
});
