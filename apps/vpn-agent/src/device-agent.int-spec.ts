// The agent against a real broker (local Mosquitto), with a raw MQTT client playing the cloud.
import { ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';

import {
  buildCommandRequest,
  CommandReply,
  decodeKuraPayload,
  DISCONNECTED_IP,
  encodeKuraPayload,
  encodeVpnProfile,
  KuraPayload,
  metric,
  Metrics,
  readBirthCertificate,
  readCommandReply,
  readStatusReport,
  StatusCodes,
  Topics,
  VPN_APP_ID,
  VpnCommand,
  VpnProfile,
  VpnStatusReport,
} from '@app/protocol';
import { connectAsync, MqttClient } from 'mqtt';

import type { FailMode } from './config';
import { DeviceAgent } from './device-agent';
import { SimulatedDriver } from './drivers/simulated.driver';
import { createLogger } from '@app/edge';
import { eventually, expectNothingFor } from '../../../test/support/eventually';

const BROKER = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';
const ACCOUNT = `it-agent-${randomBytes(4).toString('hex')}`;
const REPO_ROOT = join(__dirname, '../../..');

const profile: VpnProfile = {
  type: 'wireguard',
  tunnelAddress: '10.200.0.7/16',
  serverEndpoint: 'vpn.example.com:51820',
  serverPublicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
  allowedIps: ['10.200.0.0/16'],
  dns: [],
  keepalive: 25,
};

interface Received {
  topic: string;
  payload: KuraPayload | undefined;
}

/** The cloud side: sees everything of the test account, sends commands, waits for messages. */
class Cloud {
  readonly clientId = `cloud-${randomBytes(4).toString('hex')}`;
  readonly messages: Received[] = [];
  private client!: MqttClient;
  private waiters: (() => void)[] = [];

  async start(): Promise<void> {
    this.client = await connectAsync(BROKER, { clientId: this.clientId, clean: true, protocolVersion: 4 });
    this.client.on('message', (topic, bytes) => {
      let payload: KuraPayload | undefined;
      try {
        payload = decodeKuraPayload(bytes);
      } catch {
        payload = undefined;
      }
      this.messages.push({ topic, payload });
      this.waiters.forEach((w) => w());
    });
    await this.client.subscribeAsync([`$EDC/${ACCOUNT}/#`, `${ACCOUNT}/#`], { qos: 1 });
  }

  async stop(): Promise<void> {
    await this.client.endAsync();
  }

  /** The first message (at or after index `from`) matching; waits for it. */
  async next(match: (m: Received) => boolean, from = 0, timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      this.waiters = [];
    }
  }

  on(topic: string, from = 0, timeoutMs?: number): Promise<Received> {
    return this.next((m) => m.topic === topic, from, timeoutMs);
  }

  statusReports(clientId: string): VpnStatusReport[] {
    return this.messages
      .filter((m) => m.topic === Topics.status(ACCOUNT, clientId) && m.payload)
      .map((m) => readStatusReport(m.payload as KuraPayload))
      .filter((r): r is VpnStatusReport => r !== null);
  }

  /** Publishes a command and returns the request id; use reply() to wait for the answer. */
  send(clientId: string, command: VpnCommand, body?: Buffer): string {
    const requestId = randomUUID();
    const payload = buildCommandRequest({ requestId, requesterClientId: this.clientId, body });
    this.raw(Topics.command(ACCOUNT, clientId, command), encodeKuraPayload(payload));
    return requestId;
  }

  raw(topic: string, bytes: Buffer): void {
    this.client.publish(topic, bytes, { qos: 1 });
  }

  async reply(requestId: string, timeoutMs?: number): Promise<CommandReply> {
    const m = await this.on(Topics.reply(ACCOUNT, this.clientId, requestId), 0, timeoutMs);
    const reply = readCommandReply(m.payload as KuraPayload);
    if (reply === null) throw new Error('reply without response.code');
    return reply;
  }

  async command(clientId: string, command: VpnCommand, body?: Buffer): Promise<CommandReply> {
    return this.reply(this.send(clientId, command, body));
  }
}

jest.setTimeout(30_000);

let cloud: Cloud;
const agents: DeviceAgent[] = [];

function newClientId(): string {
  return `dev-${randomBytes(4).toString('hex')}`;
}

async function startAgent(clientId: string, options: { failMode?: FailMode; connectDelayMs?: number } = {}) {
  const driver = new SimulatedDriver(
    {
      connectDelayMs: options.connectDelayMs ?? 50,
      disconnectDelayMs: 0,
      failMode: options.failMode ?? 'none',
      // The BIRTH test checks the key is announced; the cloud is not involved here.
      announceKey: true,
    },
    clientId,
  );
  const agent = new DeviceAgent({
    mqtt: {
      brokerUrl: BROKER,
      account: ACCOUNT,
      clientId,
      username: undefined,
      password: undefined,
      keepaliveSec: 30,
      reconnectPeriodMs: 200,
    },
    device: { displayName: `Device ${clientId}`, modelId: 'test-model', serialNumber: `SN-${clientId}` },
    driver,
    logger: createLogger('silent'),
    stopGraceMs: 500,
  });
  agents.push(agent);
  agent.start();
  await agent.whenBorn();
  return agent;
}

beforeAll(async () => {
  cloud = new Cloud();
  await cloud.start();
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await cloud.stop();
});

describe('DeviceAgent against a real broker', () => {
  it('should publish a BIRTH with the device profile and VPNCLIENT-V2, then its status', async () => {
    const clientId = newClientId();
    const agent = await startAgent(clientId);
    const birth = await cloud.on(Topics.birth(ACCOUNT, clientId));
    const cert = readBirthCertificate(birth.payload as KuraPayload);
    expect(cert).toMatchObject({
      displayName: `Device ${clientId}`,
      modelId: 'test-model',
      serialNumber: `SN-${clientId}`,
      firmwareVersion: expect.stringMatching(/^\d+\.\d+\.\d+/),
      connectionIp: '127.0.0.1',
      publicKey: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/),
    });
    expect(cert.applicationIds).toContain(VPN_APP_ID);
    expect(birth.payload?.timestamp).toBeGreaterThan(Date.now() - 60_000);
    await cloud.on(Topics.status(ACCOUNT, clientId));
    expect(cloud.statusReports(clientId)).toEqual([
      {
        connected: false,
        ipAddress: DISCONNECTED_IP,
        status: 'idle',
        statusCode: StatusCodes.NOT_APPLICABLE,
        bootId: agent.bootId,
        seq: 1,
      },
    ]);
  });

  it('should connect and disconnect on command, replying with the status and reporting every change', async () => {
    const clientId = newClientId();
    const agent = await startAgent(clientId);
    const connect = await cloud.command(clientId, 'connect', encodeVpnProfile(profile));
    expect(connect).toEqual({
      code: 200,
      status: expect.objectContaining({ connected: true, ipAddress: '10.200.0.7', status: 'connected' }),
    });
    expect(connect.status?.statusCode).toBe(StatusCodes.ACTIVE);

    const status = await cloud.command(clientId, 'status');
    expect(status).toEqual({ code: 200, status: connect.status });

    const again = await cloud.command(clientId, 'connect', encodeVpnProfile(profile));
    expect(again).toEqual({ code: 200, status: connect.status });

    const disconnect = await cloud.command(clientId, 'disconnect');
    expect(disconnect.status).toMatchObject({
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'idle',
      statusCode: StatusCodes.DONE,
    });

    await cloud.next(
      (m) => readStatusReport(m.payload ?? { metrics: [] })?.status === 'idle' && m.topic.includes(clientId),
      0,
    );
    const reports = cloud.statusReports(clientId);
    expect(reports.map((r) => r.status)).toEqual([
      'idle',
      'connecting',
      'connected',
      'disconnecting',
      'idle',
    ]);
    expect(reports.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(reports.map((r) => r.bootId))).toEqual(new Set([agent.bootId]));
  });

  it('should answer two commands sent together in order, the second after the first has finished', async () => {
    const clientId = newClientId();
    await startAgent(clientId, { connectDelayMs: 300 });
    const first = cloud.send(clientId, 'connect', encodeVpnProfile(profile));
    const second = cloud.send(clientId, 'status');
    const [connectReply, statusReply] = await Promise.all([cloud.reply(first), cloud.reply(second)]);
    expect(connectReply.status?.status).toBe('connected');
    // Had the status run during the connect it would say "connecting".
    expect(statusReply.status).toEqual(connectReply.status);
    const topics = cloud.messages.map((m) => m.topic);
    expect(topics.indexOf(Topics.reply(ACCOUNT, cloud.clientId, first))).toBeLessThan(
      topics.indexOf(Topics.reply(ACCOUNT, cloud.clientId, second)),
    );
  });

  it('should reply 400 to an invalid profile, 404 to an unknown command and 500 with a step code on driver failure', async () => {
    const clientId = newClientId();
    await startAgent(clientId);
    const invalid = await cloud.command(clientId, 'connect', Buffer.from('{"type":"wireguard"}'));
    expect(invalid).toMatchObject({
      code: 400,
      exceptionMessage: expect.any(String),
      status: { status: 'idle' },
    });

    const requestId = randomUUID();
    cloud.raw(
      `$EDC/${ACCOUNT}/${clientId}/${VPN_APP_ID}/EXEC/reboot`,
      encodeKuraPayload(buildCommandRequest({ requestId, requesterClientId: cloud.clientId })),
    );
    expect(await cloud.reply(requestId)).toMatchObject({
      code: 404,
      exceptionMessage: expect.stringContaining('reboot'),
    });

    const failing = newClientId();
    await startAgent(failing, { failMode: 'connect' });
    const failed = await cloud.command(failing, 'connect', encodeVpnProfile(profile));
    expect(failed).toMatchObject({
      code: 500,
      exceptionMessage: expect.stringContaining('simulated failure'),
      status: { connected: false, status: 'error', statusCode: StatusCodes.HANDSHAKE_TIMEOUT },
    });
  });

  it('should ignore malformed commands and keep answering', async () => {
    const clientId = newClientId();
    await startAgent(clientId);
    const topic = Topics.command(ACCOUNT, clientId, 'connect');
    cloud.raw(topic, Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]));
    cloud.raw(topic, encodeKuraPayload({ metrics: [metric.string(Metrics.REQUEST_ID, 'only-an-id')] }));
    cloud.raw(
      topic,
      encodeKuraPayload({
        metrics: [
          metric.string(Metrics.REQUEST_ID, 'x'),
          metric.string(Metrics.REQUESTER_CLIENT_ID, 'bad/level'),
        ],
      }),
    );
    expect((await cloud.command(clientId, 'status')).code).toBe(200);
    expect(cloud.messages.filter((m) => m.topic.includes('/REPLY/only-an-id'))).toHaveLength(0);
  });

  it('should leave an LWT when its connection dies, then reconnect with a new BIRTH and a higher seq', async () => {
    const clientId = newClientId();
    const agent = await startAgent(clientId);
    await cloud.command(clientId, 'connect', encodeVpnProfile(profile));
    const mark = cloud.messages.length;
    (agent as unknown as { client: MqttClient }).client.stream.destroy();
    await cloud.on(Topics.lwt(ACCOUNT, clientId), mark);
    await cloud.on(Topics.birth(ACCOUNT, clientId), mark);
    // A report the broker had not acknowledged before the socket died is sent again (QoS 1 at least
    // once); the cloud drops such repeats by seq. The report made for the new connection comes after.
    const after = await cloud.next(
      (m) =>
        m.topic === Topics.status(ACCOUNT, clientId) && readStatusReport(m.payload as KuraPayload)?.seq === 4,
      mark,
    );
    expect(readStatusReport(after.payload as KuraPayload)).toMatchObject({
      connected: true,
      ipAddress: '10.200.0.7',
      bootId: agent.bootId,
    });
    expect(agent.birthCount).toBe(2);
    expect((await cloud.command(clientId, 'status')).code).toBe(200);
  });

  it('should take the tunnel down, publish DC and no LWT on a clean stop', async () => {
    const clientId = newClientId();
    const agent = await startAgent(clientId);
    await cloud.command(clientId, 'connect', encodeVpnProfile(profile));
    const mark = cloud.messages.length;
    await agent.stop();
    await cloud.on(Topics.disconnect(ACCOUNT, clientId), mark);
    await expectNothingFor(
      300,
      'the broker publishes an LWT right after the link drops, well within 300 ms',
      () =>
        expect(cloud.messages.slice(mark).some((m) => m.topic === Topics.lwt(ACCOUNT, clientId))).toBe(false),
    );
    const after = cloud.messages.slice(mark);
    expect(after.some((m) => m.topic === Topics.lwt(ACCOUNT, clientId))).toBe(false);
    const statusIndex = after.findIndex((m) => m.topic === Topics.status(ACCOUNT, clientId));
    const dcIndex = after.findIndex((m) => m.topic === Topics.disconnect(ACCOUNT, clientId));
    expect(readStatusReport(after[statusIndex].payload as KuraPayload)).toMatchObject({
      status: 'idle',
      connected: false,
    });
    expect(statusIndex).toBeLessThan(dcIndex);
  });
  it('should not answer a connect in fail mode timeout, yet still stop cleanly and answer what was pending', async () => {
    const clientId = newClientId();
    const agent = await startAgent(clientId, { failMode: 'timeout' });
    const connect = cloud.send(clientId, 'connect', encodeVpnProfile(profile));
    const status = cloud.send(clientId, 'status');
    await expect(cloud.reply(connect, 800)).rejects.toThrow('timed out');
    expect(cloud.statusReports(clientId).at(-1)).toMatchObject({ status: 'connecting' });

    const mark = cloud.messages.length;
    await agent.stop();
    await cloud.on(Topics.disconnect(ACCOUNT, clientId), mark);
    expect(await cloud.reply(connect, 100)).toMatchObject({ code: 500 });
    expect((await cloud.reply(status, 100)).code).toBe(200);
    expect(cloud.statusReports(clientId).at(-1)).toMatchObject({ status: 'idle', connected: false });
    const after = cloud.messages.slice(mark).map((m) => m.topic);
    expect(after.at(-1)).toBe(Topics.disconnect(ACCOUNT, clientId));
  });
});

describe('vpn-agent process', () => {
  function spawnAgent(clientId: string, extra: string[] = []): ChildProcessWithoutNullStreams {
    return spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        '-r',
        'tsconfig-paths/register',
        'apps/vpn-agent/src/main.ts',
        '--broker',
        BROKER,
        '--client-id',
        clientId,
        ...extra,
      ],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, VPN_AGENT_ACCOUNT: ACCOUNT, VPN_AGENT_CONNECT_DELAY_MS: '10' },
      },
    );
  }

  function lines(child: ChildProcessWithoutNullStreams): {
    all: string[];
    waitFor: (msg: string) => Promise<void>;
  } {
    const all: string[] = [];
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      all.push(...parts);
    });
    const waitFor = (msg: string): Promise<void> =>
      eventually(
        () => {
          if (all.some((l) => (JSON.parse(l) as { msg?: string }).msg === msg)) return;
          // An exited agent will not print it: say so at once, with its output.
          if (child.exitCode !== null) throw new Error(`agent exited (${child.exitCode}) before "${msg}"`);
          throw new Error(`no "${msg}" line yet; got:\n${all.join('\n')}`);
        },
        20_000,
        50,
      );
    return { all, waitFor };
  }

  function exited(child: ChildProcessWithoutNullStreams): Promise<number | null> {
    return new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.on('exit', (code) => resolve(code));
    });
  }

  it('should print "agent ready", answer commands, and stop cleanly with DC on SIGTERM', async () => {
    const clientId = newClientId();
    const child = spawnAgent(clientId);
    const out = lines(child);
    await out.waitFor('agent ready');
    const reply = await cloud.command(clientId, 'connect', encodeVpnProfile(profile));
    expect(reply.status).toMatchObject({ connected: true, ipAddress: '10.200.0.7' });
    const mark = cloud.messages.length;
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    await cloud.on(Topics.disconnect(ACCOUNT, clientId), mark);
    expect(out.all.every((l) => JSON.parse(l) !== null)).toBe(true);
  });

  it('should leave an LWT when killed', async () => {
    const clientId = newClientId();
    const child = spawnAgent(clientId);
    await lines(child).waitFor('agent ready');
    const mark = cloud.messages.length;
    child.kill('SIGKILL');
    await exited(child);
    await cloud.on(Topics.lwt(ACCOUNT, clientId), mark);
  });

  it('should exit 2 naming the option when the configuration is bad', async () => {
    const child = spawnAgent(newClientId(), ['--connect-delay-ms', 'soon']);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    expect(await exited(child)).toBe(2);
    expect(stderr).toContain('--connect-delay-ms');
  });
});
