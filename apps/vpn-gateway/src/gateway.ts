// The VPN gateway process: one WireGuard interface whose peers the cloud manages over MQTT (full
// syncs and change sets, answered with the serial held), and reports of per-peer handshakes and traffic.
import { Socket } from 'node:net';
import { join } from 'node:path';

import {
  GATEWAY_APP_ID,
  GatewayReply,
  KuraPayload,
  Metrics,
  ResponseCodes,
  SerialQueue,
  Topics,
  birthMetrics,
  buildGatewayReply,
  decodeKuraPayload,
  disableNagle,
  encodeGatewayPeerReport,
  encodeKuraPayload,
  gatewayCommandSubscription,
  getNumberMetric,
  parseTopic,
  readCommandRequest,
} from '@app/protocol';
import { connect, IClientOptions, MqttClient } from 'mqtt';

import type { GatewayConfig } from './config';
import { EndpointStore } from './endpoint-store';
import { PeerReportTracker, chunkReports } from './peer-reports';
import { GatewayCommandName, PeerSync } from './peer-sync';
import { checkSystemTools } from './system-tools';
import { GATEWAY_VERSION } from './version';
import { WireguardInterface } from './wireguard-interface';
import { Logger, errorFields, loadOrCreateKeys, withoutCredentials } from '@app/edge';

/** Replies kept per request id, so a redelivered request is answered again instead of run twice. */
const REMEMBERED_REPLIES = 128;
const DC_ACK_TIMEOUT_MS = 3000;
/** How long a stop lets queued requests finish before the interface goes. */
const STOP_GRACE_MS = 5000;
/** Polling every second while peers added within this window wait for their first handshake. */
const FIRST_HANDSHAKE_WINDOW_MS = 120_000;
const FAST_POLL_MS = 1000;
/**
 * A poll holds wireguard-go's configuration lock while it lists every peer (~50 ms at 10,000 peers),
 * and a change that arrives meanwhile waits for it: fast polling never takes more than 1/20 of the time.
 */
const MAX_POLL_SHARE = 20;
/** A poll due while requests wait is put off by this much, so a burst of sync chunks runs first. */
const POLL_BACKOFF_MS = 200;

export interface GatewayOptions {
  config: GatewayConfig;
  logger: Logger;
  wireguard: WireguardInterface;
  endpoints: EndpointStore;
  publicKey: string;
}

/**
 * The session is clean on purpose, as for the device agent: after every BIRTH the cloud sends a
 * full sync, so a request queued while the gateway was away would only be answered with 409.
 */
export class Gateway {
  readonly sync: PeerSync;
  readonly wireguard: WireguardInterface;
  private readonly queue = new SerialQueue();
  private readonly replies = new Map<string, Promise<KuraPayload>>();
  private readonly reports = new PeerReportTracker();
  private readonly logger: Logger;
  private readonly topics: Readonly<
    Record<'birth' | 'dc' | 'lwt' | 'commands' | 'peers' | 'commandPrefix', string>
  >;
  private client: MqttClient | undefined;
  private connection = 0;
  private births = 0;
  private linkUp = false;
  private lastLinkError: string | undefined;
  private lastPollError: string | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: GatewayOptions) {
    const { account, clientId } = options.config.mqtt;
    this.logger = options.logger;
    this.wireguard = options.wireguard;
    this.sync = new PeerSync(options.wireguard, options.logger, options.wireguard.pairsStale);
    this.topics = {
      birth: Topics.birth(account, clientId),
      dc: Topics.disconnect(account, clientId),
      lwt: Topics.lwt(account, clientId),
      commands: gatewayCommandSubscription(account, clientId),
      peers: Topics.gatewayPeers(account, clientId),
      commandPrefix: `$EDC/${account}/${clientId}/${GATEWAY_APP_ID}/`,
    };
  }

  /** Checks the tools, loads the key pair and the stored endpoints, and opens (or takes over) the interface. */
  static async create(config: GatewayConfig, logger: Logger): Promise<Gateway> {
    await checkSystemTools();
    const keys = await loadOrCreateKeys(config.wireguard.stateDir, logger);
    const endpoints = await EndpointStore.load(join(config.wireguard.stateDir, 'peers.json'), logger);
    const wireguard = await WireguardInterface.open({
      interfaceName: config.wireguard.interfaceName,
      netns: config.wireguard.netns,
      listenPort: config.wireguard.listenPort,
      keepaliveSec: config.wireguard.keepaliveSec,
      privateKeyFile: keys.privateKeyFile,
      endpoints,
      logger: logger.child({ interface: config.wireguard.interfaceName }),
    });
    logger.info(
      {
        interface: wireguard.name,
        netns: config.wireguard.netns,
        listenPort: config.wireguard.listenPort,
        publicKey: keys.publicKey,
        adopted: wireguard.adopted,
        peers: wireguard.peerCount,
        storedEndpoints: endpoints.size,
        firewallTable: wireguard.firewall.table,
      },
      'interface ready',
    );
    return new Gateway({ config, logger, wireguard, publicKey: keys.publicKey, endpoints });
  }

  start(): void {
    if (this.client !== undefined) throw new Error('gateway already started');
    const { mqtt } = this.options.config;
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
      // Subscribed by hand on every connect, before BIRTH, so no request can beat the subscription.
      resubscribe: false,
      reconnectOnConnackError: true,
      will: { topic: this.topics.lwt, payload: emptyPayload(), qos: 1, retain: false },
    };
    this.logger.info({ broker: withoutCredentials(mqtt.brokerUrl) }, 'gateway starting');
    const client = disableNagle(connect(mqtt.brokerUrl, clientOptions));
    this.client = client;
    client.on('connect', () => void this.onConnect(client));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('close', () => this.onClose());
    client.on('reconnect', () => {
      if (client.options.will !== undefined) client.options.will.payload = emptyPayload();
    });
    client.on('error', (err) => {
      if (err.message === this.lastLinkError) return;
      this.lastLinkError = err.message;
      this.logger.warn({ ...errorFields(err) }, 'broker connection error');
    });
    this.schedulePoll(0);
  }

  /**
   * Clean stop: queued requests finish (bounded), DC, graceful MQTT disconnect (no LWT), then the
   * interface (which ends wireguard-go) and the firewall table go. Forwarding stays as it was.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.logger.info({}, 'gateway stopping');
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer);
    await Promise.race([this.queue.drained(), sleep(STOP_GRACE_MS)]);
    await this.polling;
    const client = this.client;
    if (client !== undefined) {
      if (client.connected) {
        try {
          await withTimeout(
            client.publishAsync(this.topics.dc, emptyPayload(), { qos: 1 }),
            DC_ACK_TIMEOUT_MS,
          );
        } catch (err) {
          this.logger.warn({ ...errorFields(err) }, 'DC not acknowledged');
        }
        await withTimeout(client.endAsync(false), DC_ACK_TIMEOUT_MS).catch(() => client.endAsync(true));
      } else {
        await client.endAsync(true);
      }
    }
    await this.options.endpoints.flush();
    await this.wireguard.remove();
    this.logger.info(
      { interface: this.wireguard.name },
      'gateway stopped, interface and firewall table removed',
    );
  }

  private async onConnect(client: MqttClient): Promise<void> {
    const connection = ++this.connection;
    this.lastLinkError = undefined;
    this.linkUp = true;
    try {
      const granted = await client.subscribeAsync(this.topics.commands, { qos: 1 });
      if (granted.some((g) => g.qos === 128))
        throw new Error(`broker refused subscription ${this.topics.commands}`);
      if (connection !== this.connection || this.stopping !== undefined) return;
      await client.publishAsync(this.topics.birth, this.birthPayload(client), { qos: 1 });
      this.births++;
      const fields = { births: this.births, serial: this.sync.serial, peers: this.wireguard.peerCount };
      if (this.births === 1) {
        this.logger.info(fields, 'gateway ready');
      } else {
        this.logger.info(fields, 'reconnected, BIRTH published');
      }
    } catch (err) {
      this.logger.warn({ ...errorFields(err) }, 'connection set-up failed');
    }
  }

  private onClose(): void {
    if (!this.linkUp) return;
    this.linkUp = false;
    if (this.stopping === undefined) this.logger.warn({}, 'broker connection lost, reconnecting');
  }

  private birthPayload(client: MqttClient): Buffer {
    const { config, publicKey } = this.options;
    const metrics = birthMetrics({
      displayName: config.mqtt.clientId,
      firmwareVersion: GATEWAY_VERSION,
      connectionIp: localAddress(client),
      applicationIds: [GATEWAY_APP_ID],
      publicKey,
      listenPort: config.wireguard.listenPort,
      uptime: Math.round(process.uptime() * 1000),
    });
    return encodeKuraPayload({ timestamp: Date.now(), metrics });
  }

  /** Never throws: a bad message is logged and dropped. */
  private onMessage(topic: string, bytes: Buffer): void {
    const command = this.commandOf(topic);
    if (command === undefined) {
      this.logger.debug({ topic }, 'message ignored: not a request for this gateway');
      return;
    }
    let request: ReturnType<typeof readCommandRequest>;
    try {
      request = readCommandRequest(decodeKuraPayload(bytes));
    } catch (err) {
      this.logger.warn({ topic, ...errorFields(err) }, 'malformed request ignored');
      return;
    }
    if (request === null) {
      this.logger.warn({ topic }, 'request without request.id or requester.client.id ignored');
      return;
    }
    const { requestId, requesterClientId, body } = request;
    let replyTopic: string;
    try {
      replyTopic = Topics.reply(
        this.options.config.mqtt.account,
        requesterClientId,
        requestId,
        GATEWAY_APP_ID,
      );
    } catch (err) {
      this.logger.warn({ topic, ...errorFields(err) }, 'request with an unusable reply address ignored');
      return;
    }
    if (this.stopping !== undefined) {
      this.sendReply(
        replyTopic,
        buildGatewayReply({
          code: ResponseCodes.INTERNAL_ERROR,
          serial: this.sync.serial,
          exceptionMessage: 'gateway is shutting down',
        }),
        requestId,
      );
      return;
    }
    let reply = this.replies.get(requestId);
    if (reply === undefined) {
      reply = this.queue.run(() => this.execute(command, requestId, body));
      this.remember(requestId, reply);
    } else {
      this.logger.info({ command, requestId }, 'repeated request answered from memory');
    }
    reply.then(
      (payload) => {
        // A failure may pass (nft or wireguard-go busy): a resend of the same request runs again.
        if (getNumberMetric(payload, Metrics.RESPONSE_CODE) === ResponseCodes.INTERNAL_ERROR) {
          this.replies.delete(requestId);
        }
        this.sendReply(replyTopic, payload, requestId);
      },
      (err: unknown) => this.logger.error({ command, requestId, ...errorFields(err) }, 'request crashed'),
    );
  }

  private async execute(command: string, requestId: string, body: Buffer | undefined): Promise<KuraPayload> {
    const started = performance.now();
    let reply: GatewayReply;
    if (command !== 'sync' && command !== 'apply') {
      reply = {
        code: ResponseCodes.NOT_FOUND,
        serial: this.sync.serial,
        exceptionMessage: `unknown gateway request ${command}`,
      };
    } else {
      try {
        reply = await this.sync.handle(command satisfies GatewayCommandName, body);
      } catch (err) {
        this.logger.error({ command, requestId, ...errorFields(err) }, 'request handler failed');
        reply = {
          code: ResponseCodes.INTERNAL_ERROR,
          serial: this.sync.serial,
          exceptionMessage: 'internal gateway error',
        };
      }
    }
    const fields = {
      command,
      requestId,
      code: reply.code,
      serial: reply.serial,
      ms: Math.round((performance.now() - started) * 10) / 10,
    };
    if (reply.code === ResponseCodes.OK) this.logger.debug(fields, 'request done');
    else this.logger.info({ ...fields, exceptionMessage: reply.exceptionMessage }, 'request refused');
    return buildGatewayReply(reply);
  }

  private sendReply(topic: string, reply: KuraPayload, requestId: string): void {
    this.client?.publish(topic, encodeKuraPayload(reply), { qos: 1 }, (err) => {
      if (err) this.logger.warn({ requestId, ...errorFields(err) }, 'reply not sent');
    });
  }

  /** `sync`/`apply`, the rest of the topic for another request under our application, or undefined. */
  private commandOf(topic: string): string | undefined {
    const parsed = parseTopic(topic);
    const { account, clientId } = this.options.config.mqtt;
    if (parsed?.kind === 'gateway-command') {
      return parsed.account === account && parsed.clientId === clientId ? parsed.command : undefined;
    }
    if (!topic.startsWith(this.topics.commandPrefix)) return undefined;
    const rest = topic.slice(this.topics.commandPrefix.length).split('/');
    // Kura request verbs; a REPLY under our id is someone's answer, not a request.
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

  private schedulePoll(delayMs: number): void {
    if (this.stopping !== undefined) return;
    this.pollTimer = setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
      });
    }, delayMs);
  }

  private async poll(): Promise<void> {
    if (this.stopping !== undefined) return;
    if (this.queue.size > 0) return this.schedulePoll(POLL_BACKOFF_MS);
    const started = performance.now();
    try {
      const client = this.client;
      const peers = await this.wireguard.readPeers();
      this.lastPollError = undefined;
      // Offline, nothing is taken as reported: the changes go out with the first poll after reconnect.
      if (client?.connected === true) this.publishReports(client, this.reports.changes(peers));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (message !== this.lastPollError)
        this.logger.warn({ ...errorFields(err) }, 'peer statistics not readable');
      this.lastPollError = message;
    }
    const took = performance.now() - started;
    const fast = this.wireguard.awaitingFirstHandshake(FIRST_HANDSHAKE_WINDOW_MS);
    const interval = this.options.config.statsIntervalMs;
    this.schedulePoll(fast ? Math.min(interval, Math.max(FAST_POLL_MS, took * MAX_POLL_SHARE)) : interval);
  }

  private publishReports(client: MqttClient, changed: ReturnType<PeerReportTracker['changes']>): void {
    for (const peers of chunkReports(changed)) {
      const payload: KuraPayload = {
        timestamp: Date.now(),
        metrics: [],
        body: encodeGatewayPeerReport({ peers }),
      };
      client.publish(this.topics.peers, encodeKuraPayload(payload), { qos: 1 }, (err) => {
        if (!err) return;
        this.reports.forget(peers);
        this.logger.warn({ peers: peers.length, ...errorFields(err) }, 'peer report not sent');
      });
    }
    if (changed.length > 0) this.logger.debug({ peers: changed.length }, 'peer report published');
  }
}

function emptyPayload(): Buffer {
  return encodeKuraPayload({ timestamp: Date.now(), metrics: [] });
}

function localAddress(client: MqttClient): string | undefined {
  const stream: unknown = client.stream;
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
