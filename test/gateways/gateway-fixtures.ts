import type { components } from '../generated/api-types';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { MqttClient } from 'mqtt';
import request from 'supertest';
import {
  buildCommandReply,
  decodeKuraPayload,
  deviceCommandSubscription,
  DISCONNECTED_IP,
  encodeKuraPayload,
  parseTopic,
  parseVpnProfile,
  readCommandRequest,
  ResponseCodes,
  StatusCodes,
  Topics,
  type CommandReply,
  type VpnCommand,
  type VpnProfile,
  type VpnStatusReport,
} from '@app/protocol';
import { eventually } from '../support/eventually';
import {
  connectAnonymous,
  connectDevice,
  getDevice,
  issueCredentials,
  publishBirth,
  publishDc,
  uniqueClientId,
  usesExternalBroker,
  type DeviceBody,
  type DeviceCredentials,
} from '../support/device-factories';
import { FakeGateway, wireGuardKey, type GatewayCredentials } from '../support/fake-gateway';
import { bearer } from '../support/http';
import type { TestApi } from '../support/test-api';

/** Small factories for the gateway tests: gateways over REST, FakeGateways, simulated keyed devices. */

export type GatewayBody = components['schemas']['GatewayDto'];

/** The engineers' client pool (VPN_CLIENT_POOL default): routed through every device tunnel. */
export const CLIENT_POOL = '10.208.0.0/16';

export const uniqueGatewayName = (): string => `gw-${randomBytes(5).toString('hex')}`;

export async function createGateway(
  api: TestApi,
  token: string,
  scope = '_',
  body: { name?: string; endpoint?: string; description?: string } = {},
): Promise<GatewayBody> {
  const res = await request(api.url)
    .post(`/v1/${scope}/gateways`)
    .set(bearer(token))
    .send({ name: uniqueGatewayName(), endpoint: 'vpn.example.com:51820', ...body });
  if (res.status !== 201) throw new Error(`createGateway: ${res.status} ${res.text}`);
  return res.body as GatewayBody;
}

export async function getGateway(
  api: TestApi,
  token: string,
  scope: string,
  id: string,
): Promise<GatewayBody> {
  const res = await request(api.url).get(`/v1/${scope}/gateways/${id}`).set(bearer(token));
  if (res.status !== 200) throw new Error(`getGateway: ${res.status} ${res.text}`);
  return res.body as GatewayBody;
}

export async function issueGatewayCredentials(
  api: TestApi,
  token: string,
  scope: string,
  id: string,
): Promise<GatewayCredentials> {
  const res = await request(api.url).post(`/v1/${scope}/gateways/${id}/credentials`).set(bearer(token));
  if (res.status !== 201) throw new Error(`issueGatewayCredentials: ${res.status} ${res.text}`);
  return res.body as GatewayCredentials;
}

/**
 * A registered gateway with a FakeGateway connected for it, after its first full sync (so the
 * cloud holds its key and a later change arrives as an apply).
 */
export async function startGateway(
  api: TestApi,
  token: string,
  scope = '_',
  body: { name?: string; endpoint?: string } = {},
): Promise<{ gateway: GatewayBody; fake: FakeGateway }> {
  const gateway = await createGateway(api, token, scope, body);
  const creds = await issueGatewayCredentials(api, token, scope, gateway.id);
  const fake = await FakeGateway.start(api.mqttUrl, creds);
  await fake.waitForFullSync();
  return { gateway, fake };
}

/** Registers a device in `scope`, optionally pinned to a gateway. */
export async function createDeviceIn(
  api: TestApi,
  token: string,
  scope = '_',
  body: { clientId?: string; gatewayId?: string } = {},
): Promise<DeviceBody & { gatewayId: string | null }> {
  const res = await request(api.url)
    .post(`/v1/${scope}/devices`)
    .set(bearer(token))
    .send({ clientId: uniqueClientId(), ...body });
  if (res.status !== 201) throw new Error(`createDevice: ${res.status} ${res.text}`);
  return res.body as DeviceBody & { gatewayId: string | null };
}

export interface ReceivedCommand {
  command: VpnCommand;
  requestId: string;
  requesterClientId: string;
  /** The connect body, parsed as the agent parses it. */
  profile?: VpnProfile;
  /** performance.now() at arrival. */
  receivedAt: number;
}

/**
 * A device simulated with a raw MQTT client, as an agent with a WireGuard key behaves on the
 * wire: BIRTH (with `vpn.public_key`), and an answer to each VPN command with its status.
 * `respond` decides the answer (null: no answer at all).
 */
export class SimDevice {
  readonly commands: ReceivedCommand[] = [];
  /** Every topic the device received, commands or not. */
  readonly topics: string[] = [];
  respond: (c: ReceivedCommand) => CommandReply | null = (c) => this.agentReply(c);
  /** Called when a command arrives, before it is answered. */
  onCommand?: (c: ReceivedCommand) => void;
  private client: MqttClient | undefined;
  private readonly bootId = `boot-${randomBytes(4).toString('hex')}`;
  private seq = 0;
  private current: VpnStatusReport;

  private constructor(
    private readonly api: TestApi,
    readonly device: DeviceBody,
    readonly account: string,
    private readonly creds: DeviceCredentials | undefined,
    public publicKey: string | null,
  ) {
    this.current = this.report(false, DISCONNECTED_IP, 'idle', StatusCodes.NOT_APPLICABLE);
  }

  /** Connects as the device (with issued credentials on the embedded broker), subscribes, sends its BIRTH. */
  static async start(
    api: TestApi,
    token: string,
    scope: string,
    device: DeviceBody,
    account: string,
    opts: { publicKey?: string | null } = {},
  ): Promise<SimDevice> {
    const creds = usesExternalBroker(api) ? undefined : await issueCredentials(api, token, scope, device.id);
    const publicKey = opts.publicKey === undefined ? wireGuardKey() : opts.publicKey;
    const sim = new SimDevice(api, device, account, creds, publicKey);
    await sim.connect();
    await eventually(async () =>
      expect(await getDevice(api, token, scope, device.id)).toMatchObject({
        connectionStatus: 'CONNECTED',
        vpnPublicKey: publicKey,
      }),
    );
    return sim;
  }

  get clientId(): string {
    return this.device.clientId;
  }

  get mqtt(): MqttClient {
    if (!this.client) throw new Error('SimDevice: not connected');
    return this.client;
  }

  /** A new MQTT session (with LWT), the command subscription, then the BIRTH. */
  async connect(): Promise<void> {
    const opts = { will: true };
    const client = this.creds
      ? await connectDevice(this.api, this.creds, opts)
      : await connectAnonymous(this.api, this.account, this.clientId, opts);
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(client, topic, payload));
    await client.subscribeAsync(deviceCommandSubscription(this.account, this.clientId), { qos: 1 });
    await this.birth(this.publicKey);
  }

  /** Publishes a BIRTH announcing `publicKey` (null: none, a keyless driver). */
  async birth(publicKey: string | null): Promise<void> {
    this.publicKey = publicKey;
    await publishBirth(this.mqtt, this.account, this.clientId, publicKey ? { publicKey } : {});
  }

  /** DC, then a clean disconnect. */
  async disconnect(): Promise<void> {
    const client = this.client;
    if (!client || client.disconnected) return;
    await publishDc(client, this.account, this.clientId);
    await client.endAsync();
  }

  /** The link drops without DISCONNECT: the broker publishes the LWT. */
  async crash(): Promise<void> {
    const client = this.client;
    if (!client || client.disconnected) return;
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.stream.destroy();
    await gone;
    await client.endAsync(true).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.client?.endAsync(true).catch(() => undefined);
  }

  /**
   * Resolves once everything the broker forwarded to the device before this call has arrived:
   * the device's own message on its command namespace comes after it.
   */
  async flush(): Promise<void> {
    const marker = `$EDC/${this.account}/${this.clientId}/VPNCLIENT-V2/GET/marker-${randomBytes(4).toString('hex')}`;
    await this.mqtt.publishAsync(marker, encodeKuraPayload({ timestamp: Date.now(), metrics: [] }), {
      qos: 1,
    });
    await eventually(() => expect(this.topics).toContain(marker));
  }

  private onMessage(client: MqttClient, topic: string, bytes: Buffer): void {
    if (client !== this.client) return;
    this.topics.push(topic);
    const parsed = parseTopic(topic);
    if (parsed?.kind !== 'command') return;
    const req = readCommandRequest(decodeKuraPayload(bytes));
    if (!req) return;
    const c: ReceivedCommand = {
      command: parsed.command,
      requestId: req.requestId,
      requesterClientId: req.requesterClientId,
      receivedAt: performance.now(),
    };
    if (parsed.command === 'connect') c.profile = parseVpnProfile(req.body);
    this.commands.push(c);
    this.onCommand?.(c);
    const reply = this.respond(c);
    if (!reply) return;
    client.publish(
      Topics.reply(this.account, req.requesterClientId, req.requestId),
      encodeKuraPayload(buildCommandReply(reply)),
      { qos: 1 },
      () => undefined,
    );
  }

  /** What a working agent answers. */
  private agentReply(c: ReceivedCommand): CommandReply {
    if (c.command === 'connect' && c.profile) {
      const ip = c.profile.tunnelAddress.split('/')[0];
      this.current = this.report(true, ip, 'connected', StatusCodes.ACTIVE);
    } else if (c.command === 'disconnect') {
      this.current = this.report(false, DISCONNECTED_IP, 'idle', StatusCodes.DONE);
    }
    return { code: ResponseCodes.OK, status: this.current };
  }

  /** A failed command as the agent reports it (code 500 and an error status). */
  failure(message: string): CommandReply {
    this.current = this.report(false, DISCONNECTED_IP, 'error', StatusCodes.DEVICE_VPN_FAILED);
    return { code: ResponseCodes.INTERNAL_ERROR, exceptionMessage: message, status: this.current };
  }

  private report(
    connected: boolean,
    ipAddress: string,
    status: VpnStatusReport['status'],
    statusCode: string,
  ): VpnStatusReport {
    return { connected, ipAddress, status, statusCode, bootId: this.bootId, seq: this.seq++ };
  }
}

/** The first host of an IPv4 subnet, without prefix: `10.200.16.0/20` → `10.200.16.1`. */
export function firstHost(subnet: string): string {
  const [net] = subnet.split('/');
  const n = net.split('.').reduce((acc, o) => acc * 256 + Number(o), 0) + 1;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** Every MQTT client and FakeGateway a test opened, closed in afterEach/afterAll. */
export class Closer {
  private readonly items: Array<{ close(): Promise<void> }> = [];

  add<T extends { close(): Promise<void> }>(item: T): T {
    this.items.push(item);
    return item;
  }

  client(c: MqttClient): MqttClient {
    this.items.push({
      close: () =>
        c.endAsync(true).then(
          () => undefined,
          () => undefined,
        ),
    });
    return c;
  }

  async closeAll(): Promise<void> {
    const items = this.items.splice(0);
    await Promise.all(items.map((i) => i.close().catch(() => undefined)));
  }
}
