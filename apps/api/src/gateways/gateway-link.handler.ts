import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import {
  CloudSubscriptions,
  decodeKuraPayload,
  KeyedSerialQueue,
  parseGatewayPeerReport,
  readBirthCertificate,
  type BirthCertificate,
} from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { retryTransient } from '../common/transient-retry';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { ConnectionEvents, type LinkStatus } from '../mqtt/connection-events';
import { MqttRouter } from '../mqtt/mqtt-router';
import { DeviceMessageLog } from '../mqtt/device-message-log';
import { GatewayPeerRepository } from './gateway-peer.repository';
import { MAX_LIFECYCLE_PAYLOAD_BYTES } from '../devices/device-lifecycle.handler';
import { GatewayRepository } from './gateway.repository';

const STATUS_OF = { birth: 'CONNECTED', dc: 'DISCONNECTED', lwt: 'MISSING' } as const satisfies Record<
  string,
  LinkStatus
>;
/** Larger peer reports are dropped unread (500 peers take about 60 KiB). */
const MAX_REPORT_BYTES = 512 * 1024;

/**
 * What gateways tell the cloud: their lifecycle (the same Kura BIRTH/DC/LWT topics as devices;
 * a BIRTH brings the gateway's key and port and triggers a full sync) and their per-peer
 * handshake and traffic reports. Messages of one gateway are applied in arrival order.
 */
@Injectable()
export class GatewayLinkHandler implements OnModuleInit {
  private readonly logger = new Logger('GatewayLink');
  private readonly queue = new KeyedSerialQueue();
  private readonly badMessages = new DeviceMessageLog(this.logger);

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly router: MqttRouter,
    private readonly gateways: GatewayRepository,
    private readonly peers: GatewayPeerRepository,
    private readonly connections: ConnectionEvents,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    for (const kind of ['birth', 'dc', 'lwt'] as const) {
      // The same topics as devices' lifecycle, with the same size limit.
      this.router.on(kind, (t, payload) => {
        if (payload.length > MAX_LIFECYCLE_PAYLOAD_BYTES) return; // logged by the devices' handler
        this.enqueue(t.account, t.clientId, () => this.lifecycle(kind, t.account, t.clientId, payload));
      });
    }
    this.router.on('gateway-peers', (t, payload) => {
      if (payload.length > MAX_REPORT_BYTES) {
        this.badMessages.warn(
          `${t.account}/${t.clientId}`,
          { bytes: payload.length },
          'peer report too large; dropped',
        );
        return;
      }
      this.enqueue(t.account, t.clientId, () => this.report(t.account, t.clientId, payload));
    });
    const group = this.config.mqttSharedGroup;
    this.connections.onSessionCut('gateway', (cut) => this.sessionCut(cut.account, cut.clientId));
    await this.mqtt.subscribe(
      group
        ? CloudSubscriptions.shared(group, CloudSubscriptions.gatewayPeers)
        : CloudSubscriptions.gatewayPeers,
    );
  }

  /**
   * The broker ended the gateway's session without its will (docs/brokers.md): recorded as the
   * LWT would have been, if it was CONNECTED, in order with its lifecycle messages.
   */
  sessionCut(account: string, name: string): Promise<void> {
    return this.queue.run(`${account}/${name}`, () =>
      retryTransient(() => this.lifecycle('lwt', account, name, Buffer.alloc(0), 'CONNECTED')),
    );
  }

  private enqueue(account: string, name: string, task: () => Promise<void>): void {
    void this.queue
      .run(`${account}/${name}`, () => retryTransient(task))
      .catch((err: unknown) => this.logger.error({ err, account, gateway: name }, 'gateway message failed'));
  }

  /** Exposed for tests: applies one lifecycle message if (account, name) is a gateway. */
  async lifecycle(
    kind: 'birth' | 'dc' | 'lwt',
    account: string,
    name: string,
    raw: Buffer,
    onlyFrom?: LinkStatus,
  ): Promise<void> {
    let birth: BirthCertificate | undefined;
    if (kind === 'birth') {
      try {
        birth = readBirthCertificate(decodeKuraPayload(raw));
      } catch {
        birth = { applicationIds: [] };
      }
    }
    const status = STATUS_OF[kind];
    const gateway = await this.gateways.applyLifecycle(account, name, status, birth, onlyFrom);
    if (!gateway) return; // a device's message: the devices domain handles it
    if (kind === 'birth' && birth?.publicKey === undefined) {
      this.logger.warn({ account, gateway: name }, 'gateway BIRTH without a valid vpn.public_key');
    }
    this.logger.log({ account, gateway: name, status }, `gateway ${status}`);
    this.connections.emit({ kind: 'gateway', id: gateway.id, scopeId: gateway.scopeId, status });
  }

  private async report(account: string, name: string, raw: Buffer): Promise<void> {
    let stats;
    try {
      stats = parseGatewayPeerReport(decodeKuraPayload(raw).body);
    } catch (err) {
      this.badMessages.warn(`${account}/${name}`, {}, 'malformed peer report; dropped', err);
      return;
    }
    const gatewayId = await this.gateways.idOf(account, name);
    if (!gatewayId) return;
    await this.peers.recordStats(gatewayId, stats.peers);
  }
}
