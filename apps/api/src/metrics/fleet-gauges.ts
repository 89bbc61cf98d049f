import { Injectable, Logger } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { VPN_STATUSES } from '@app/protocol';
import { CONNECTION_STATUSES } from '../devices/device.entity';
import { PEER_KINDS } from '../gateways/gateway-peer.entity';
import { DELIVERY_STATUSES } from '../webhooks/webhook-delivery.entity';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { AppMetrics } from './app-metrics';
import { FleetCountsRepository, type FleetCount } from './fleet-counts.repository';

/** The gauges read at scrape time: the fleet by state (SQL) and the cloud's own links. */
@Injectable()
export class FleetGauges {
  private readonly logger = new Logger('Metrics');
  private readonly devices: Gauge<'connection'>;
  private readonly tunnels: Gauge<'status'>;
  private readonly gateways: Gauge<'connection'>;
  private readonly peers: Gauge<'kind' | 'applied'>;
  private readonly sessions: Gauge;
  private readonly deliveries: Gauge<'status'>;
  private readonly databaseUp: Gauge;

  constructor(
    private readonly counts: FleetCountsRepository,
    metrics: AppMetrics,
    mqtt: CloudMqttClient,
  ) {
    const registers = [metrics.registry];
    this.devices = new Gauge({
      name: 'vpn_devices',
      help: 'Registered devices by MQTT connection state',
      labelNames: ['connection'],
      registers,
    });
    this.tunnels = new Gauge({
      name: 'vpn_device_tunnels',
      help: 'Devices by the VPN status they last reported (devices that never reported are not counted)',
      labelNames: ['status'],
      registers,
    });
    this.gateways = new Gauge({
      name: 'vpn_gateways',
      help: 'Registered gateways by MQTT connection state',
      labelNames: ['connection'],
      registers,
    });
    this.peers = new Gauge({
      name: 'vpn_gateway_peers',
      help: 'WireGuard peers the gateways must hold, by kind, and whether their gateway has applied them',
      labelNames: ['kind', 'applied'],
      registers,
    });
    this.sessions = new Gauge({
      name: 'vpn_sessions_active',
      help: "Engineers' VPN sessions that have not ended",
      registers,
    });
    this.deliveries = new Gauge({
      name: 'webhook_deliveries',
      help: 'Webhook deliveries in the outbox by status (finished ones until they are purged)',
      labelNames: ['status'],
      registers,
    });
    this.databaseUp = new Gauge({
      name: 'database_up',
      help: '1 when the fleet counts of this scrape could be read from the database, else 0 (and they are absent)',
      registers,
    });
    new Gauge({
      name: 'mqtt_link_up',
      help: "1 while the cloud's MQTT client is connected to the broker, else 0",
      registers,
      collect() {
        this.set(mqtt.connected ? 1 : 0);
      },
    });
  }

  /** Reads the counts into the gauges; called once per scrape, before the registry is serialised. */
  async refresh(): Promise<void> {
    let rows: FleetCount[];
    try {
      rows = await this.counts.read();
    } catch (err) {
      this.logger.warn({ err }, 'fleet counts unavailable for this scrape');
      for (const g of [this.devices, this.tunnels, this.gateways, this.peers, this.sessions, this.deliveries])
        g.reset();
      this.databaseUp.set(0);
      return;
    }
    this.databaseUp.set(1);
    this.devices.reset();
    this.tunnels.reset();
    this.gateways.reset();
    this.peers.reset();
    this.deliveries.reset();
    for (const connection of CONNECTION_STATUSES) {
      this.devices.set({ connection }, 0);
      this.gateways.set({ connection }, 0);
    }
    for (const status of VPN_STATUSES) this.tunnels.set({ status }, 0);
    for (const kind of PEER_KINDS)
      for (const applied of ['true', 'false']) this.peers.set({ kind, applied }, 0);
    this.sessions.set(0);
    for (const status of DELIVERY_STATUSES) this.deliveries.set({ status }, 0);
    for (const r of rows) {
      const value = Number(r.value);
      if (r.metric === 'devices') this.devices.set({ connection: r.a }, value);
      else if (r.metric === 'tunnels') this.tunnels.set({ status: r.a }, value);
      else if (r.metric === 'gateways') this.gateways.set({ connection: r.a }, value);
      else if (r.metric === 'peers') this.peers.set({ kind: r.a, applied: r.b }, value);
      else if (r.metric === 'deliveries') this.deliveries.set({ status: r.a }, value);
      else this.sessions.set(value);
    }
  }
}
