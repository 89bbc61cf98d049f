import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { connectAsync, type MqttClient } from 'mqtt';
import {
  birthMetrics,
  buildGatewayReply,
  decodeKuraPayload,
  encodeGatewayPeerReport,
  encodeKuraPayload,
  GATEWAY_APP_ID,
  GATEWAY_SERIAL_GAP,
  gatewayCommandSubscription,
  GatewayMessageError,
  parseGatewayApply,
  parseGatewaySync,
  parseTopic,
  readCommandRequest,
  ResponseCodes,
  Topics,
  type GatewayApply,
  type GatewayCommand,
  type GatewayPeer,
  type GatewayPeerStats,
  type GatewayReply,
  type GatewaySync,
} from '@app/protocol';
import { eventually } from './eventually';

/** What `POST /v1/{scopeId}/gateways/{id}/credentials` answers. */
export interface GatewayCredentials {
  username: string;
  password: string;
  clientId: string;
  account: string;
}

/** One request the gateway received, with what it answered. */
export interface GatewayRequest {
  command: GatewayCommand;
  requestId: string;
  requesterClientId: string;
  /** The parsed body of a `sync` request (undefined for `apply`, or when malformed). */
  sync?: GatewaySync;
  /** The parsed body of an `apply` request (undefined for `sync`, or when malformed). */
  apply?: GatewayApply;
  /** The reply sent; undefined while the request is held (or forever, when never released). */
  reply?: GatewayReply;
  /** performance.now() at arrival: comparable with other clients of this process. */
  receivedAt: number;
}

export interface FakeGatewayOptions {
  /** The WireGuard public key announced in the BIRTH; a random valid key by default. */
  publicKey?: string;
  listenPort?: number;
}

/** A real-looking WireGuard public key (base64 of 32 bytes). */
export const wireGuardKey = (): string => randomBytes(32).toString('base64');

/**
 * A VPN gateway speaking the gateway protocol (VPNGATEWAY-V1) over a real MQTT connection with
 * the gateway's credentials, as apps/vpn-gateway does, without the WireGuard interface: it holds
 * the peer map and the serial, assembles chunked full syncs, applies change sets, answers 409 on
 * a serial gap and records every request. It can be told to hold its answers (a gateway that
 * does not acknowledge) or to answer with a fixed code.
 */
export class FakeGateway {
  readonly publicKey: string;
  readonly listenPort: number;
  /** Every request received since construction, in arrival order (across restarts). */
  readonly requests: GatewayRequest[] = [];
  /** The peers held after the last completed sync or apply, by public key. */
  peers = new Map<string, GatewayPeer>();
  addresses: string[] = [];
  /** The serial held; 0 and unsynced after a (re)start, as a new gateway process. */
  serial = 0;
  private synced = false;
  private pending: { serial: number; nextChunk: number; peers: Map<string, GatewayPeer> } | undefined;
  private client: MqttClient | undefined;
  private holding = false;
  private held: GatewayRequest[] = [];
  private forced: { code: number; command?: GatewayCommand; times: number } | undefined;

  private constructor(
    private readonly url: string,
    readonly creds: GatewayCredentials,
    options: FakeGatewayOptions,
  ) {
    this.publicKey = options.publicKey ?? wireGuardKey();
    this.listenPort = options.listenPort ?? 51820;
  }

  /** Connects (client id = the gateway's name, LWT set), subscribes to its requests and sends its BIRTH. */
  static async start(url: string, creds: GatewayCredentials, options: FakeGatewayOptions = {}) {
    const gateway = new FakeGateway(url, creds, options);
    await gateway.connect();
    return gateway;
  }

  get account(): string {
    return this.creds.account;
  }

  get name(): string {
    return this.creds.clientId;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /**
   * Opens a new session: the subscription first, then the BIRTH, so no request can come before
   * it listens. Unless `keepState` (a reconnect of the same process), it starts as a new process
   * would: serial 0, no peers, no full sync yet, answering as a real gateway (no hold, no forced code).
   */
  async connect(opts: { keepState?: boolean } = {}): Promise<void> {
    if (this.client && !this.client.disconnected) throw new Error('FakeGateway: already connected');
    if (!opts.keepState) {
      this.peers = new Map();
      this.addresses = [];
      this.serial = 0;
      this.synced = false;
      this.pending = undefined;
      this.held = [];
      this.holding = false;
      this.forced = undefined;
    }
    const client = await connectAsync(this.url, {
      clientId: this.name,
      username: this.creds.username,
      password: this.creds.password,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      keepalive: 30,
      will: {
        topic: Topics.lwt(this.account, this.name),
        payload: encodeKuraPayload({ timestamp: Date.now(), metrics: [] }),
        qos: 1,
        retain: false,
      },
    });
    this.client = client;
    client.on('message', (topic, payload) => this.onMessage(client, topic, payload));
    const granted = await client.subscribeAsync(gatewayCommandSubscription(this.account, this.name), {
      qos: 1,
    });
    if (granted.some((g) => g.qos === 128)) throw new Error('FakeGateway: subscription refused');
    const birth = birthMetrics({
      displayName: this.name,
      applicationIds: [GATEWAY_APP_ID],
      publicKey: this.publicKey,
      listenPort: this.listenPort,
    });
    await client.publishAsync(
      Topics.birth(this.account, this.name),
      encodeKuraPayload({ timestamp: Date.now(), metrics: birth }),
      { qos: 1 },
    );
  }

  /** A clean stop: DC, then a graceful MQTT disconnect (no LWT). */
  async disconnect(): Promise<void> {
    const client = this.client;
    if (!client || client.disconnected) return;
    await client.publishAsync(
      Topics.disconnect(this.account, this.name),
      encodeKuraPayload({ timestamp: Date.now(), metrics: [] }),
      { qos: 1 },
    );
    await client.endAsync();
  }

  /** The process dies: the socket goes without DISCONNECT, so the broker publishes the LWT. */
  async crash(): Promise<void> {
    const client = this.client;
    if (!client || client.disconnected) return;
    const gone = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.stream.destroy();
    await gone;
    await client.endAsync(true).catch(() => undefined);
  }

  /** Ends the connection whatever its state (for clean-up). */
  async close(): Promise<void> {
    await this.client?.endAsync(true).catch(() => undefined);
  }

  /** From now on requests are recorded but not answered, until release(). */
  hold(): void {
    this.holding = true;
  }

  /** Answers the held requests in arrival order, and every later one, as a real gateway. */
  release(): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const r of held) this.answer(r);
  }

  /** The next `times` requests (of `command`, if given) are answered with `code` and the serial held, changing nothing; `times: 0` ends a forcing. */
  answerWith(code: number, opts: { command?: GatewayCommand; times?: number } = {}): void {
    const times = opts.times ?? 1;
    this.forced = times > 0 ? { code, command: opts.command, times } : undefined;
  }

  /** Publishes a peer report (`{account}/{gateway}/VPNGATEWAY-V1/peers`). */
  async reportPeers(peers: GatewayPeerStats[]): Promise<void> {
    if (!this.client) throw new Error('FakeGateway: not connected');
    await this.client.publishAsync(
      Topics.gatewayPeers(this.account, this.name),
      encodeKuraPayload({ timestamp: Date.now(), metrics: [], body: encodeGatewayPeerReport({ peers }) }),
      { qos: 1 },
    );
  }

  /** The raw MQTT client, to try topics the protocol does not use (ACL tests). */
  get mqtt(): MqttClient {
    if (!this.client) throw new Error('FakeGateway: not connected');
    return this.client;
  }

  syncs(): GatewayRequest[] {
    return this.requests.filter((r) => r.command === 'sync');
  }

  applies(): GatewayRequest[] {
    return this.requests.filter((r) => r.command === 'apply');
  }

  /** Waits for a request (at index `from` or later) matching `match`. */
  async waitForRequest(
    match: (r: GatewayRequest) => boolean,
    opts: { from?: number; timeoutMs?: number } = {},
  ): Promise<GatewayRequest> {
    return eventually(() => {
      const found = this.requests.slice(opts.from ?? 0).find(match);
      if (!found) throw new Error(`FakeGateway ${this.name}: no matching request yet`);
      return found;
    }, opts.timeoutMs ?? 5000);
  }

  /** Waits until the last chunk of a full sync was received and answered 200. */
  waitForFullSync(opts: { from?: number; timeoutMs?: number } = {}): Promise<GatewayRequest> {
    return this.waitForRequest((r) => r.sync?.last === true && r.reply?.code === ResponseCodes.OK, opts);
  }

  // -------------------------------------------------------------------------------------------

  private onMessage(client: MqttClient, topic: string, bytes: Buffer): void {
    if (client !== this.client) return;
    const parsed = parseTopic(topic);
    if (parsed?.kind !== 'gateway-command' || parsed.account !== this.account) return;
    if (parsed.clientId !== this.name) return;
    const request = readCommandRequest(decodeKuraPayload(bytes));
    if (!request) return;
    const r: GatewayRequest = {
      command: parsed.command,
      requestId: request.requestId,
      requesterClientId: request.requesterClientId,
      receivedAt: performance.now(),
    };
    try {
      if (parsed.command === 'sync') r.sync = parseGatewaySync(request.body);
      else r.apply = parseGatewayApply(request.body);
    } catch (err) {
      if (!(err instanceof GatewayMessageError)) throw err;
    }
    this.requests.push(r);
    if (this.holding) this.held.push(r);
    else this.answer(r);
  }

  private answer(r: GatewayRequest): void {
    r.reply = this.handle(r);
    this.client?.publish(
      Topics.reply(this.account, r.requesterClientId, r.requestId, GATEWAY_APP_ID),
      encodeKuraPayload(buildGatewayReply(r.reply)),
      { qos: 1 },
      () => undefined,
    );
  }

  private handle(r: GatewayRequest): GatewayReply {
    const forced = this.forced;
    if (forced && (forced.command === undefined || forced.command === r.command)) {
      if (--forced.times <= 0) this.forced = undefined;
      return { code: forced.code, serial: this.serial, exceptionMessage: `forced ${forced.code}` };
    }
    if (r.sync) return this.sync(r.sync);
    if (r.apply) return this.apply(r.apply);
    return { code: ResponseCodes.BAD_REQUEST, serial: this.serial, exceptionMessage: 'malformed body' };
  }

  private sync(s: GatewaySync): GatewayReply {
    if (s.chunk === 0) this.pending = { serial: s.serial, nextChunk: 0, peers: new Map() };
    const pending = this.pending;
    if (!pending || pending.serial !== s.serial || pending.nextChunk !== s.chunk) {
      this.pending = undefined;
      return {
        code: GATEWAY_SERIAL_GAP,
        serial: this.serial,
        exceptionMessage: `sync chunk ${s.chunk} of serial ${s.serial} does not follow the chunks received`,
      };
    }
    for (const p of s.peers) pending.peers.set(p.publicKey, p);
    pending.nextChunk++;
    if (!s.last) return { code: ResponseCodes.OK, serial: this.serial };
    this.pending = undefined;
    this.peers = pending.peers;
    this.addresses = [...s.addresses];
    this.serial = s.serial;
    this.synced = true;
    return { code: ResponseCodes.OK, serial: s.serial };
  }

  private apply(a: GatewayApply): GatewayReply {
    if (!this.synced || a.previous !== this.serial) {
      return {
        code: GATEWAY_SERIAL_GAP,
        serial: this.serial,
        exceptionMessage: this.synced
          ? `the gateway holds serial ${this.serial}, not ${a.previous}`
          : 'the gateway has not received a full sync since it started',
      };
    }
    const upserted = new Set(a.upsert.map((p) => p.publicKey));
    for (const key of a.remove) if (!upserted.has(key)) this.peers.delete(key);
    for (const p of a.upsert) this.peers.set(p.publicKey, p);
    this.addresses = [...a.addresses];
    this.serial = a.serial;
    return { code: ResponseCodes.OK, serial: a.serial };
  }
}
