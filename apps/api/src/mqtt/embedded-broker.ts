import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { createBroker, type AuthenticateError, type Client } from 'aedes';
import type Aedes from 'aedes';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { deviceMayPublish, deviceMaySubscribe, GATEWAY_APP_ID, VPN_APP_ID } from '@app/protocol';
import { PacketLengthGuard, PendingConnections } from './connection-guard';
import { DeviceMessageLog } from './device-message-log';
import { BrokerCredentials } from './broker-credentials';
import { EdgeCredentials } from './edge-credentials';
import { CLOUD_USERNAME, identityId, type BrokerIdentity, type EdgeIdentity } from './broker-identity';

function authError(message: string, returnCode: AuthenticateError['returnCode']): AuthenticateError {
  const err = new Error(message) as AuthenticateError;
  err.returnCode = returnCode;
  return err;
}

/**
 * The in-process MQTT broker (aedes) started when no MQTT_URL is configured.
 * It authenticates every connection and enforces the topic ACL of docs/protocol.md,
 * so a device can only speak for itself.
 */
/** The largest packet the cloud's own client may publish (gateway peer syncs). */
const CLOUD_MAX_PACKET_BYTES = 64 * 1024 * 1024;

/** How long a clean DISCONNECT waits for the device's DC message before it counts as one. */
const CLEAN_DISCONNECT_GRACE_MS = 1000;

/** How aedes hands a message to a subscriber inside its process. */
type InternalDelivery = (packet: { topic: string; payload: Buffer | string }, done: () => void) => void;

/** A device answers as the VPN client application, a gateway as the gateway application. */
const appOf = (id: EdgeIdentity) => (id.kind === 'gateway' ? GATEWAY_APP_ID : VPN_APP_ID);

@Injectable()
export class EmbeddedBroker implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('EmbeddedBroker');
  private broker?: Aedes;
  private server?: Server;
  private readonly identities = new WeakMap<Client, BrokerIdentity>();
  /** Live connections per device or gateway id, to cut them when credentials change. */
  private readonly edgeClients = new Map<string, Set<Client>>();
  /**
   * Devices and gateways are let in only once the cloud's own client has subscribed: the broker
   * is new on every start (nothing persists in it), so a BIRTH published before the cloud listens
   * would be lost and the device would look offline until its next reconnect.
   */
  private edgeAdmitted = false;
  /** Each accepted socket's packet guard and its place among the unauthenticated connections. */
  private readonly admitted = new WeakMap<object, { guard: PacketLengthGuard; release: () => void }>();
  private readonly refusals = new DeviceMessageLog(this.logger);
  /** Clients that set a will at CONNECT: closing without DISCONNECT publishes it. */
  private readonly withWill = new WeakSet<Client>();
  private readonly closedListeners: Array<(identity: EdgeIdentity) => void> = [];
  /** The internal credential of this process's own cloud client. */
  readonly cloudPassword = randomBytes(24).toString('base64url');
  port = 0;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    credentials: BrokerCredentials,
    private readonly edgeCredentials: EdgeCredentials,
  ) {
    // New, disabled or deleted credentials end the live session: the next CONNECT is checked anew.
    credentials.onChange((change) => {
      if (change.type !== 'enabled') this.disconnectClient(change.id);
    });
  }

  get enabled(): boolean {
    return this.config.mqttBrokerKind === 'embedded';
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Called by the cloud's client once its subscriptions are in place. */
  admitEdgeClients(): void {
    if (!this.edgeAdmitted) this.logger.log('cloud subscribed; devices and gateways admitted');
    this.edgeAdmitted = true;
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) return;
    const limits = this.config.mqttLimits;
    const pending = new PendingConnections(limits.maxUnauthenticatedPerAddress);
    const broker = createBroker({
      id: 'vpn-cloud-embedded',
      // A connection that has not sent an authenticated CONNECT by then is closed.
      connectTimeout: limits.connectTimeoutMs,
      authenticate: (client, username, password, done) => {
        if (username !== CLOUD_USERNAME && !this.edgeAdmitted) {
          // Code 3 (server unavailable): clients retry, and by then the cloud listens.
          return done(authError('Server starting', 3), false);
        }
        this.authenticate(client, username, password).then(
          (identity) => {
            if (!identity) return done(authError('Bad username or password', 4), false);
            this.identities.set(client, identity);
            if (identity.kind !== 'cloud') {
              const set = this.edgeClients.get(identityId(identity)) ?? new Set<Client>();
              set.add(client);
              this.edgeClients.set(identityId(identity), set);
            }
            done(null, true);
          },
          (err: unknown) => {
            this.logger.error({ err }, 'device authentication failed');
            done(authError('Server unavailable', 3), false);
          },
        );
      },
      authorizePublish: (client, packet, done) => {
        if (!client) return done(null);
        const id = this.identities.get(client);
        if (id?.kind === 'cloud') return done(null);
        if (id && deviceMayPublish(id.account, id.clientId, packet.topic, appOf(id))) return done(null);
        done(new Error('Publish not authorized'));
      },
      authorizeSubscribe: (client, sub, done) => {
        const id = this.identities.get(client);
        if (id?.kind === 'cloud') return done(null, sub);
        if (id && deviceMaySubscribe(id.account, id.clientId, sub.topic)) return done(null, sub);
        // A refused subscription is answered with a SUBACK failure code (null), not a disconnect.
        done(null, null);
      },
    });
    broker.on('clientDisconnect', (client) => {
      const id = this.identities.get(client);
      if (!id || id.kind === 'cloud') return;
      const set = this.edgeClients.get(identityId(id));
      set?.delete(client);
      if (set?.size === 0) this.edgeClients.delete(identityId(id));
      // Still online through another connection (a session takeover): nothing changed.
      if (this.edgeClients.has(identityId(id))) return;
      // Set only by a DISCONNECT packet, which also suppresses the will.
      const clean = (client as Client & { _disconnected?: boolean })._disconnected === true;
      if (!clean && this.withWill.has(client)) return; // its LWT says MISSING
      // A clean DISCONNECT normally follows the device's DC message, which is on its way to the
      // cloud's client: give it a moment to arrive, so one disconnect is recorded once.
      const notify = () => {
        if (this.edgeClients.has(identityId(id))) return;
        for (const l of this.closedListeners) l(id);
      };
      if (clean) setTimeout(notify, CLEAN_DISCONNECT_GRACE_MS).unref();
      else notify();
    });
    broker.on('clientError', (client, err) =>
      this.logger.debug(`client ${client?.id} error: ${err.message}`),
    );
    this.broker = broker;
    broker.on('client', (client) => {
      if ((client as Client & { will?: unknown }).will) this.withWill.add(client);
      // Authenticated: the full packet limit applies, and the address's place is freed.
      const admitted = this.admitted.get(client.conn);
      if (admitted) {
        // The cloud's own client is trusted: a peer sync chunk may be larger than a device's packet.
        admitted.guard.limit =
          this.identities.get(client)?.kind === 'cloud' ? CLOUD_MAX_PACKET_BYTES : limits.maxPacketBytes;
        admitted.release();
      }
    });
    const server = createServer({ noDelay: true }, (socket) => {
      // Without TCP_NODELAY a QoS 1 round trip through aedes takes ~88 ms instead of ~0.4 ms.
      socket.setNoDelay(true);
      const address = socket.remoteAddress ?? 'unknown';
      if (!pending.admit(address)) {
        this.refusals.warn(
          address,
          { limit: limits.maxUnauthenticatedPerAddress },
          'too many unauthenticated MQTT connections from one address; refused',
        );
        socket.destroy();
        return;
      }
      let waiting = true;
      const release = () => {
        if (!waiting) return;
        waiting = false;
        pending.release(address);
      };
      const guard = new PacketLengthGuard(limits.maxConnectBytes);
      this.admitted.set(socket, { guard, release });
      // Observes the bytes as aedes reads them, so an oversized packet is refused on its header.
      socket.on('data', (chunk: Buffer) => {
        if (guard.feed(chunk)) return;
        this.refusals.warn(
          address,
          { limit: guard.limit },
          'MQTT packet over the size limit; connection closed',
        );
        socket.destroy();
      });
      socket.once('close', release);
      broker.handle(socket);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE') {
          reject(
            new Error(
              `MQTT port ${this.config.mqttPort} is already in use: set MQTT_PORT to a free port, ` +
                'or set MQTT_URL to use the broker that is running there',
            ),
          );
        } else reject(err);
      });
      server.listen(this.config.mqttPort, () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : this.config.mqttPort;
    this.logger.log(`embedded MQTT broker listening on port ${this.port}`);
  }

  private async authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<BrokerIdentity | null> {
    if (!username || !password || password.length > 1024) return null;
    if (username === CLOUD_USERNAME) {
      const expected = Buffer.from(this.cloudPassword);
      return password.length === expected.length && timingSafeEqual(password, expected)
        ? { kind: 'cloud' }
        : null;
    }
    const identity = await this.edgeCredentials.authenticate(client.id, username, password);
    if (!identity) return null;
    // MQTT client ids are broker-wide: a device or gateway may take over its own session, never
    // the cloud's or that of another identity (e.g. of another account) sharing its client id.
    const current = (this.broker as (Aedes & { clients: Record<string, Client | undefined> }) | undefined)
      ?.clients[client.id];
    const holder = current && current !== client ? this.identities.get(current) : undefined;
    if (holder && (holder.kind === 'cloud' || identityId(holder) !== identityId(identity))) return null;
    if (client.id === this.config.mqttClientId) return null;
    return identity;
  }

  /** The cloud's own subscriptions in this process, by topic filter. */
  private readonly internal = new Map<string, InternalDelivery>();

  /**
   * Delivers what is published on `filter` to `listener` inside this process. The cloud's client
   * needs no MQTT connection to a broker that lives and dies with it: no packet is encoded,
   * parsed or acknowledged for the cloud's side, and no QoS 1 copy is kept for a session that
   * cannot go away. Devices and gateways still connect over MQTT with QoS 1 and the ACL.
   */
  subscribeInternal(filter: string, listener: (topic: string, payload: Buffer) => void): Promise<void> {
    const broker = this.broker;
    if (!broker) return Promise.reject(new Error('embedded MQTT broker not started'));
    if (this.internal.has(filter)) return Promise.resolve();
    const deliver: InternalDelivery = (packet, done) => {
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      try {
        listener(packet.topic, payload);
      } finally {
        done();
      }
    };
    this.internal.set(filter, deliver);
    return new Promise<void>((resolve) => broker.subscribe(filter, deliver, () => resolve()));
  }

  unsubscribeInternal(filter: string): Promise<void> {
    const broker = this.broker;
    const deliver = this.internal.get(filter);
    this.internal.delete(filter);
    if (!broker || !deliver) return Promise.resolve();
    return new Promise<void>((resolve) => broker.unsubscribe(filter, deliver, () => resolve()));
  }

  /** Publishes as the cloud (QoS 1) to the devices and gateways subscribed. */
  publishInternal(topic: string, payload: Buffer): Promise<void> {
    const broker = this.broker;
    if (!broker) return Promise.reject(new Error('embedded MQTT broker not started'));
    return new Promise<void>((resolve, reject) =>
      broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  /**
   * Called when the last connection of a device or gateway closes without a will being published
   * (it set none, or a clean DISCONNECT suppressed it): nothing else would tell the cloud.
   */
  onEdgeClosed(listener: (identity: EdgeIdentity) => void): void {
    this.closedListeners.push(listener);
  }

  /**
   * Disconnects every client authenticated as this device or gateway (used when credentials are
   * rotated, or the device disabled or deleted).
   */
  disconnectClient(id: string): void {
    for (const client of this.edgeClients.get(id) ?? []) client.close();
  }

  async onApplicationShutdown(): Promise<void> {
    const broker = this.broker;
    const server = this.server;
    this.broker = undefined;
    this.server = undefined;
    // Closing the broker ends every client connection; only then can the listener finish closing.
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
