import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import {
  CloudSubscriptions,
  decodeKuraPayload,
  KeyedSerialQueue,
  readBirthCertificate,
  sentOnOf,
  type BirthCertificate,
  type KuraPayload,
} from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { retryTransient } from '../common/transient-retry';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { ConnectionEvents } from '../mqtt/connection-events';
import { MqttRouter } from '../mqtt/mqtt-router';
import { DeviceMessageLog } from '../mqtt/device-message-log';
import { DevicePeers } from '../gateways/device-peers.service';
import { InstanceLease } from '../instances/instance-lease';
import { EmbeddedBroker } from '../mqtt/embedded-broker';
import type { ConnectionStatus } from './device.entity';
import { DevicesRepository, type InferredConnection } from './devices.repository';

/** Larger lifecycle messages are dropped unread. */
export const MAX_LIFECYCLE_PAYLOAD_BYTES = 64 * 1024;

const STATUS_OF = { birth: 'CONNECTED', dc: 'DISCONNECTED', lwt: 'MISSING' } as const satisfies Record<
  string,
  ConnectionStatus
>;
const EVENT_OF = { birth: 'BIRTH', dc: 'DC', lwt: 'LWT' } as const;

/**
 * Applies the Kura lifecycle topics: BIRTH → CONNECTED (and the device profile
 * from its metrics), DC → DISCONNECTED, LWT → MISSING, each also stored as a
 * device event. Messages of one device are applied in arrival order; bad
 * messages are logged and dropped without affecting others. A BIRTH with a new
 * WireGuard key replaces the device's peer on its gateway. (Gateways send the
 * same topics; their messages match no device and are the gateways domain's.)
 *
 * It also keeps the stored status true when no lifecycle message says so (docs/protocol.md,
 * "Connection truth"): any other message of a device (a status report, a reply) proves it is
 * CONNECTED; on the embedded broker a connection that closes without publishing a will makes it
 * DISCONNECTED at once; the connection resync marks MISSING a device that stays silent. These go
 * through the same per-device queue as the lifecycle messages, so they apply in arrival order.
 */
@Injectable()
export class DeviceLifecycleHandler implements OnModuleInit {
  private readonly logger = new Logger('DeviceLifecycle');
  private readonly queue = new KeyedSerialQueue();
  private readonly badMessages = new DeviceMessageLog(this.logger);
  /**
   * Whether this process applies lifecycle messages: always with one instance; with
   * MQTT_SHARED_GROUP only while it is the leader (docs/scale-out.md).
   */
  ownsLifecycle: boolean;

  /**
   * Devices (`account/clientId`) this instance knows to be stored as CONNECTED: a message from one
   * of them costs no database work. Filled by BIRTH and by a proof of presence, emptied by DC, LWT
   * and a closed connection; empty after a start, so each device's first message checks once.
   */
  private readonly knownConnected = new Set<string>();

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly router: MqttRouter,
    private readonly devices: DevicesRepository,
    private readonly connectionEvents: ConnectionEvents,
    private readonly devicePeers: DevicePeers,
    private readonly lease: InstanceLease,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    broker: EmbeddedBroker,
  ) {
    this.ownsLifecycle = !config.mqttSharedGroup;
    broker.onEdgeClosed((identity) => {
      if (identity.kind === 'device') this.linkClosed(identity.account, identity.clientId);
    });
  }

  async onModuleInit(): Promise<void> {
    for (const kind of ['birth', 'dc', 'lwt'] as const) {
      this.router.on(kind, ({ account, clientId }, payload) =>
        this.onMessage(kind, account, clientId, payload),
      );
    }
    // A status report is a message of the device: proof that it is connected.
    this.router.on('status', ({ account, clientId }) =>
      this.presenceProven(account, clientId, 'status report'),
    );
    const filter = CloudSubscriptions.lifecycle;
    // Several replicas: Mosquitto 2.0 (2.0.11 tested) delivers nothing to a shared subscription of a `$` topic
    // (`$share/g/$EDC/…`), so instead of a share group, the leader alone takes the lifecycle
    // topics (docs/scale-out.md).
    if (this.config.mqttSharedGroup)
      this.lease.onLeadership((leader) => {
        this.ownsLifecycle = leader;
        return leader ? this.mqtt.subscribe(filter) : this.mqtt.unsubscribe(filter);
      });
    else await this.mqtt.subscribe(filter);
    this.connectionEvents.onSessionCut('device', (cut) => this.sessionCut(cut.account, cut.clientId));
  }

  /**
   * The broker ended the device's session without its will (docs/brokers.md): recorded as the LWT
   * would have been, if the device was CONNECTED. Queued with its lifecycle messages, so a BIRTH
   * that arrived before the cut cannot overwrite it.
   */
  sessionCut(account: string, clientId: string): Promise<void> {
    return this.queue.run(`${account}/${clientId}`, () =>
      retryTransient(() => this.apply('lwt', account, clientId, Buffer.alloc(0), 'CONNECTED')),
    );
  }

  /**
   * A message of device (account, clientId) arrived: it is CONNECTED. Costs a set lookup when this
   * instance already knows it so; otherwise one conditional update (no write when already CONNECTED).
   */
  presenceProven(account: string, clientId: string, inferredFrom: string): void {
    // Connection state has one writer: with several replicas, the leader, which also receives every
    // BIRTH/DC/LWT. A report on another replica must not infer a BIRTH the leader then records again.
    if (!this.ownsLifecycle) return;
    const key = `${account}/${clientId}`;
    if (this.knownConnected.has(key)) return;
    this.knownConnected.add(key);
    this.infer(key, account, clientId, {
      connectionStatus: 'CONNECTED',
      from: ['NEVER_CONNECTED', 'DISCONNECTED', 'MISSING'],
      eventType: 'BIRTH',
      inferredFrom,
    }).then(
      (applied) => {
        if (!applied) this.knownConnected.delete(key);
      },
      () => this.knownConnected.delete(key),
    );
  }

  /**
   * The device's connection to the embedded broker closed without a will being published (none
   * was set, or a clean DISCONNECT suppressed it): DISCONNECTED, and requests waiting for it fail.
   * A device that announced DC first is already DISCONNECTED; an LWT's MISSING is kept.
   */
  linkClosed(account: string, clientId: string): void {
    const key = `${account}/${clientId}`;
    this.knownConnected.delete(key);
    void this.infer(key, account, clientId, {
      connectionStatus: 'DISCONNECTED',
      from: ['CONNECTED'],
      eventType: 'DC',
      inferredFrom: 'connection closed without a will',
    }).catch(() => undefined);
  }

  /**
   * The device did not answer the status request of a connection resync, and no lifecycle message
   * came since `since`: it is MISSING (what its LWT would have said). Resolves whether it changed.
   */
  async silent(account: string, clientId: string, since: Date): Promise<boolean> {
    const key = `${account}/${clientId}`;
    const changed = await this.infer(key, account, clientId, {
      connectionStatus: 'MISSING',
      from: ['CONNECTED'],
      eventType: 'LWT',
      inferredFrom: 'no answer to the status request',
      silentSince: since,
    });
    if (changed) this.knownConnected.delete(key);
    return changed;
  }

  /** Applies an inferred status in the device's queue; resolves true when the stored status is now right. */
  private infer(
    key: string,
    account: string,
    clientId: string,
    change: InferredConnection,
  ): Promise<boolean> {
    return this.queue
      .run(key, async () => {
        const device = await retryTransient(() => this.devices.inferConnection(account, clientId, change));
        if (!device) return change.connectionStatus === 'CONNECTED';
        this.connectionEvents.emit({
          kind: 'device',
          id: device.id,
          scopeId: device.scopeId,
          status: change.connectionStatus,
        });
        return true;
      })
      .catch((err: unknown) => {
        this.logger.error(
          { err, account, clientId, change: change.connectionStatus },
          'connection update failed',
        );
        throw err;
      });
  }

  private onMessage(kind: 'birth' | 'dc' | 'lwt', account: string, clientId: string, payload: Buffer): void {
    if (payload.length > MAX_LIFECYCLE_PAYLOAD_BYTES) {
      this.badMessages.warn(
        `${account}/${clientId}`,
        { kind, bytes: payload.length },
        'lifecycle message too large; dropped',
      );
      return;
    }
    void this.queue
      .run(`${account}/${clientId}`, () => retryTransient(() => this.apply(kind, account, clientId, payload)))
      .catch((err: unknown) =>
        this.logger.error({ err, account, clientId, kind }, 'lifecycle message failed'),
      );
  }

  /** Exposed for tests: applies one lifecycle message (with `onlyFrom`, only to a device in that status). */
  async apply(
    kind: 'birth' | 'dc' | 'lwt',
    account: string,
    clientId: string,
    raw: Buffer,
    onlyFrom?: ConnectionStatus,
  ): Promise<void> {
    let payload: KuraPayload = { metrics: [] };
    if (raw.length > 0) {
      try {
        payload = decodeKuraPayload(raw);
      } catch (err) {
        // A lifecycle event without a readable payload still says what happened (LWT may be empty).
        if (kind === 'birth') {
          this.badMessages.warn(`${account}/${clientId}`, {}, 'malformed BIRTH payload; dropped', err);
          return;
        }
      }
    }
    const birth: BirthCertificate | undefined = kind === 'birth' ? readBirthCertificate(payload) : undefined;
    const status = STATUS_OF[kind];
    const sentOn = sentOnOf(payload);
    const details: Record<string, unknown> = birth ? { ...birth } : {};
    const device = await this.devices.applyLifecycle(account, clientId, {
      connectionStatus: status,
      eventType: EVENT_OF[kind],
      birth,
      sentOn,
      details: onlyFrom ? { ...details, cause: 'broker cut the session' } : details,
      onlyFrom,
    });
    // No device: a gateway's message (handled by the gateways domain) or a deleted device's.
    if (!device) return;
    if (status === 'CONNECTED') this.knownConnected.add(`${account}/${clientId}`);
    else this.knownConnected.delete(`${account}/${clientId}`);
    this.connectionEvents.emit({ kind: 'device', id: device.id, scopeId: device.scopeId, status });
    if (birth) await this.devicePeers.keyAnnounced(device, birth.publicKey ?? null);
  }
}
