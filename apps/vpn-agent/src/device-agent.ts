import { Socket } from 'node:net';

import {
  disableNagle,
  birthMetrics,
  buildCommandReply,
  decodeKuraPayload,
  deviceCommandSubscription,
  encodeKuraPayload,
  KuraPayload,
  parseTopic,
  readCommandRequest,
  SerialQueue,
  statusMetrics,
  Topics,
  VPN_APP_ID,
  VpnStatusReport,
} from '@app/protocol';
import { connect, IClientOptions, MqttClient } from 'mqtt';

import type { DeviceIdentity, MqttLinkConfig } from './config';
import type { VpnDriver } from './drivers/vpn-driver';
import { AGENT_VERSION } from './version';
import { CommandOutcome, VpnCommandHandler } from './vpn-command-handler';
import { VpnStatusTracker } from './vpn-status-tracker';
import { Logger, errorFields, withoutCredentials } from '@app/edge';

export interface DeviceAgentOptions {
  mqtt: MqttLinkConfig;
  device: DeviceIdentity;
  driver: VpnDriver;
  logger: Logger;
  /** For tests; a random UUID otherwise. */
  bootId?: string;
  /** How long stop() lets a running command finish before tearing the tunnel down under it. */
  stopGraceMs?: number;
}

/** Replies kept per request id, so a redelivered command is answered again instead of run twice. */
const REMEMBERED_REPLIES = 128;
const DC_ACK_TIMEOUT_MS = 3000;

/**
 * One device's MQTT link: LWT, BIRTH after every (re)connect, VPN commands run one at a time and
 * answered on the requester's reply topic, and a status report on every change.
 *
 * The session is clean on purpose: a command the cloud sent while the device was offline has
 * already been answered with 409 or timed out, so running it later (minutes after, on reconnect)
 * would only surprise the operator. The cloud refuses commands to offline devices anyway.
 */
export class DeviceAgent {
  readonly bootId: string;
  private readonly tracker: VpnStatusTracker;
  private readonly handler: VpnCommandHandler;
  private readonly queue = new SerialQueue();
  private readonly replies = new Map<string, Promise<KuraPayload>>();
  private readonly logger: Logger;
  private client: MqttClient | undefined;
  /** Bumped per broker connection, so set-up work of a connection that has since dropped stops early. */
  private connection = 0;
  private births = 0;
  private lastLinkError: string | undefined;
  private linkUp = false;
  private stopping: Promise<void> | undefined;
  private readonly birthWaiters: (() => void)[] = [];
  private readonly topics: Readonly<
    Record<'birth' | 'dc' | 'lwt' | 'status' | 'commands' | 'commandPrefix', string>
  >;

  constructor(private readonly options: DeviceAgentOptions) {
    const { account, clientId } = options.mqtt;
    this.logger = options.logger;
    this.tracker = new VpnStatusTracker(options.bootId);
    this.bootId = this.tracker.bootId;
    this.handler = new VpnCommandHandler(
      options.driver,
      this.tracker,
      (report) => this.publishStatus(report),
      this.logger,
    );
    // Build topics once: they validate the account and client id and throw on a bad one.
    this.topics = {
      birth: Topics.birth(account, clientId),
      dc: Topics.disconnect(account, clientId),
      lwt: Topics.lwt(account, clientId),
      status: Topics.status(account, clientId),
      commands: deviceCommandSubscription(account, clientId),
      commandPrefix: `$EDC/${account}/${clientId}/${VPN_APP_ID}/`,
    };
  }

  get status(): VpnStatusReport {
    return this.tracker.current;
  }

  /** BIRTHs published since start (one per broker connection). */
  get birthCount(): number {
    return this.births;
  }

  start(): void {
    if (this.client !== undefined) throw new Error('agent already started');
    const { mqtt } = this.options;
    const clientOptions: IClientOptions = {
      // The full form {account}:{clientId}: no device of another tenant can share it.
      clientId: `${mqtt.account}:${mqtt.clientId}`,
      username: mqtt.username,
      password: mqtt.password,
      protocolVersion: 4,
      clean: true,
      keepalive: mqtt.keepaliveSec,
      reconnectPeriod: mqtt.reconnectPeriodMs,
      connectTimeout: 10_000,
      // We subscribe ourselves on every connect, before BIRTH, so that no command can beat the subscription.
      resubscribe: false,
      // Bad credentials may be fixed on the cloud side (device re-enabled, credentials provisioned late).
      reconnectOnConnackError: true,
      will: { topic: this.topics.lwt, payload: emptyPayload(), qos: 1, retain: false },
    };
    this.logger.info(
      { broker: withoutCredentials(mqtt.brokerUrl), bootId: this.bootId, driver: this.options.driver.name },
      'agent starting',
    );
    const client = disableNagle(connect(mqtt.brokerUrl, clientOptions));
    this.client = client;
    client.on('connect', () => void this.onConnect(client));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('close', () => this.onClose());
    client.on('reconnect', () => {
      // The LWT's timestamp says when the link was (re)made, not when the process started.
      if (client.options.will !== undefined) client.options.will.payload = emptyPayload();
    });
    client.on('error', (err) => {
      if (err.message === this.lastLinkError) return;
      this.lastLinkError = err.message;
      this.logger.warn({ ...errorFields(err) }, 'broker connection error');
    });
  }

  /** Resolves after the first BIRTH of this process has been acknowledged by the broker. */
  whenBorn(): Promise<void> {
    if (this.births > 0) return Promise.resolve();
    return new Promise((resolve) => this.birthWaiters.push(resolve));
  }

  /**
   * Clean shutdown: let a running command finish (bounded), take the tunnel down, report it,
   * publish DC, then disconnect gracefully so the broker does not send the LWT.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.logger.info({}, 'agent stopping');
    await Promise.race([this.queue.drained(), sleep(this.options.stopGraceMs ?? 3000)]);
    // Taking the tunnel down also aborts a command that is still hanging (simulated fail mode
    // `timeout`); that command then answers and may report an error, so after it has settled the
    // teardown runs once more (a no-op if all is idle) to leave "idle" as the last report.
    await this.handler.shutdown();
    await Promise.race([this.queue.drained(), sleep(1000)]);
    await this.handler.shutdown();
    const client = this.client;
    if (client === undefined) return;
    if (client.connected) {
      try {
        await withTimeout(client.publishAsync(this.topics.dc, emptyPayload(), { qos: 1 }), DC_ACK_TIMEOUT_MS);
      } catch (err) {
        this.logger.warn({ ...errorFields(err) }, 'DC not acknowledged');
      }
      await withTimeout(client.endAsync(false), DC_ACK_TIMEOUT_MS).catch(() => client.endAsync(true));
    } else {
      await client.endAsync(true);
    }
    this.logger.info({}, 'agent stopped');
  }

  private async onConnect(client: MqttClient): Promise<void> {
    const connection = ++this.connection;
    this.lastLinkError = undefined;
    this.linkUp = true;
    try {
      const granted = await client.subscribeAsync(this.topics.commands, { qos: 1 });
      if (granted.some((g) => g.qos === 128)) {
        throw new Error(`broker refused subscription ${this.topics.commands}`);
      }
      if (connection !== this.connection || this.stopping !== undefined) return;
      await client.publishAsync(this.topics.birth, this.birthPayload(client), { qos: 1 });
      this.births++;
      this.publishStatus(this.tracker.repeat());
      const fields = { bootId: this.bootId, births: this.births, status: this.tracker.current.status };
      if (this.births === 1) {
        this.logger.info(fields, 'agent ready');
        this.birthWaiters.splice(0).forEach((resolve) => resolve());
      } else {
        this.logger.info(fields, 'reconnected, BIRTH published');
      }
    } catch (err) {
      // The link dropped during set-up (the next connect starts over) or the broker refused us.
      this.logger.warn({ ...errorFields(err) }, 'connection set-up failed');
    }
  }

  private onClose(): void {
    if (!this.linkUp) return;
    this.linkUp = false;
    if (this.stopping === undefined) this.logger.warn({}, 'broker connection lost, reconnecting');
  }

  private birthPayload(client: MqttClient): Buffer {
    const { device, driver } = this.options;
    const metrics = birthMetrics({
      displayName: device.displayName,
      modelId: device.modelId,
      serialNumber: device.serialNumber,
      firmwareVersion: AGENT_VERSION,
      connectionIp: localAddress(client),
      applicationIds: [VPN_APP_ID],
      publicKey: driver.publicKey(),
      uptime: Math.round(process.uptime() * 1000),
    });
    return encodeKuraPayload({ timestamp: Date.now(), metrics });
  }

  private publishStatus(report: VpnStatusReport): void {
    const client = this.client;
    if (client === undefined) return;
    const payload = encodeKuraPayload({ timestamp: Date.now(), metrics: statusMetrics(report) });
    this.logger.info(
      { status: report.status, statusCode: report.statusCode, ipAddress: report.ipAddress, seq: report.seq },
      'status reported',
    );
    // While offline MQTT.js queues QoS 1 messages and sends them on reconnect; the cloud drops stale ones by seq.
    client.publish(this.topics.status, payload, { qos: 1 }, (err) => {
      if (err) this.logger.warn({ ...errorFields(err), seq: report.seq }, 'status report not sent');
    });
  }

  /** Never throws: a bad message is logged and dropped, it must not take the agent down. */
  private onMessage(topic: string, bytes: Buffer): void {
    const command = this.commandOf(topic);
    if (command === undefined) {
      this.logger.debug({ topic }, 'message ignored: not a command for this device');
      return;
    }
    let request: ReturnType<typeof readCommandRequest>;
    try {
      request = readCommandRequest(decodeKuraPayload(bytes));
    } catch (err) {
      this.logger.warn({ topic, ...errorFields(err) }, 'malformed command ignored');
      return;
    }
    if (request === null) {
      this.logger.warn({ topic }, 'command without request.id or requester.client.id ignored');
      return;
    }
    let replyTopic: string;
    try {
      replyTopic = Topics.reply(this.options.mqtt.account, request.requesterClientId, request.requestId);
    } catch (err) {
      this.logger.warn({ topic, ...errorFields(err) }, 'command with an unusable reply address ignored');
      return;
    }
    if (this.stopping !== undefined) {
      // An answer now beats a timeout at the cloud.
      this.logger.warn({ command, requestId: request.requestId }, 'command refused: agent is stopping');
      const refusal = buildCommandReply({
        code: 500,
        exceptionMessage: 'agent is shutting down',
        status: this.tracker.current,
      });
      this.sendReply(replyTopic, refusal, request.requestId);
      return;
    }
    const { requestId } = request;
    let reply = this.replies.get(requestId);
    if (reply === undefined) {
      const body = request.body;
      reply = this.queue.run(() => this.execute(command, requestId, body));
      this.remember(requestId, reply);
    } else {
      this.logger.info({ command, requestId }, 'repeated request answered from memory');
    }
    reply.then(
      (payload) => this.sendReply(replyTopic, payload, requestId),
      (err: unknown) => this.logger.error({ command, requestId, ...errorFields(err) }, 'command crashed'),
    );
  }

  private async execute(command: string, requestId: string, body: Buffer | undefined): Promise<KuraPayload> {
    const started = Date.now();
    this.logger.info({ command, requestId, queued: this.queue.size - 1 }, 'command received');
    let outcome: CommandOutcome;
    try {
      outcome = await this.handler.handle(command, body);
    } catch (err) {
      // A bug, not a driver failure (those are outcomes): still answer, so the cloud is not left waiting.
      this.logger.error({ command, requestId, ...errorFields(err) }, 'command handler failed');
      outcome = {
        code: 500,
        exceptionMessage: 'internal agent error',
        status: this.tracker.current,
      };
    }
    this.logger.info({ command, requestId, code: outcome.code, ms: Date.now() - started }, 'command done');
    return buildCommandReply({
      code: outcome.code,
      exceptionMessage: outcome.exceptionMessage,
      status: outcome.status,
    });
  }

  private sendReply(topic: string, reply: KuraPayload, requestId: string): void {
    this.client?.publish(topic, encodeKuraPayload(reply), { qos: 1 }, (err) => {
      if (err) this.logger.warn({ requestId, ...errorFields(err) }, 'reply not sent');
    });
  }

  /**
   * The command a topic asks for: a known one from the protocol, or for an unknown request under
   * our VPN app the rest of its topic (e.g. `EXEC/reboot`, answered 404), or undefined for anything else.
   */
  private commandOf(topic: string): string | undefined {
    const parsed = parseTopic(topic);
    const { account, clientId } = this.options.mqtt;
    if (parsed?.kind === 'command') {
      return parsed.account === account && parsed.clientId === clientId ? parsed.command : undefined;
    }
    if (!topic.startsWith(this.topics.commandPrefix)) return undefined;
    const rest = topic.slice(this.topics.commandPrefix.length).split('/');
    // Kura request verbs; REPLY topics under our id are someone else's answers, not requests.
    if (rest.length < 2 || !['GET', 'PUT', 'POST', 'DEL', 'EXEC'].includes(rest[0])) return undefined;
    return rest.join('/');
  }

  private remember(requestId: string, reply: Promise<KuraPayload>): void {
    this.replies.set(requestId, reply);
    if (this.replies.size > REMEMBERED_REPLIES) {
      const oldest = this.replies.keys().next().value;
      if (oldest !== undefined) this.replies.delete(oldest);
    }
  }
}

function emptyPayload(): Buffer {
  return encodeKuraPayload({ timestamp: Date.now(), metrics: [] });
}

/** Our address on the broker connection (what the cloud would see without NAT), for BIRTH's connection_ip. */
function localAddress(client: MqttClient): string | undefined {
  const stream: unknown = client.stream;
  // Undefined over WebSockets, where the socket is not ours to see; BIRTH then leaves the metric out.
  const address = stream instanceof Socket ? stream.localAddress : undefined;
  return address?.startsWith('::ffff:') ? address.slice(7) : address;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
