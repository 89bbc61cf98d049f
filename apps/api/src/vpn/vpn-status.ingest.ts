import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { CloudSubscriptions, decodeKuraPayload, readStatusReport, sentOnOf } from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { MqttRouter, type RoutedTopic } from '../mqtt/mqtt-router';
import { DeviceMessageLog } from '../mqtt/device-message-log';
import { VpnStatusStore, type VpnStatusUpdate } from './vpn-status.store';
import { StatusBatcher } from './status-batcher';
import { isTransientDbError, retryTransient } from '../common/transient-retry';
import { AppMetrics } from '../metrics/app-metrics';

const MAX_STATUS_PAYLOAD_BYTES = 16 * 1024;
/** How long shutdown waits for the queued reports to be written. */
const SHUTDOWN_DRAIN_MS = 5000;

/**
 * Ingests the unsolicited `{account}/{clientId}/VPNCLIENT-V2/status` reports.
 * Reports are written in batches, one statement each (see StatusBatcher), a
 * device's reports in the order received; the ordering rule itself is enforced
 * by the store. Bad reports are logged and dropped.
 */
@Injectable()
export class VpnStatusIngest implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('VpnStatusIngest');
  private readonly badMessages = new DeviceMessageLog(this.logger);
  private readonly batcher = new StatusBatcher<VpnStatusUpdate>({
    write: (batch) => this.write(batch),
    keyOf: (u) => `${u.account}/${u.clientId}`,
    onFailed: (err, batch) => {
      this.failed += batch.length;
      this.logger.error({ err, size: batch.length }, 'storing a batch of status reports failed');
    },
    onDropped: (u, total) => {
      const now = Date.now();
      if (now - this.lastDropLog < 1000) return;
      this.lastDropLog = now;
      this.logger.error(
        { account: u.account, clientId: u.clientId, dropped: total },
        'status queue full; oldest reports dropped',
      );
    },
  });
  private lastDropLog = 0;
  /** Reports stored or found stale by the database; visible to benchmarks and health. */
  applied = 0;
  /** Reports whose write failed. */
  failed = 0;
  /** Reports dropped on arrival: too large, malformed, or without valid status metrics. */
  rejected = 0;

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly router: MqttRouter,
    private readonly store: VpnStatusStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    metrics: AppMetrics,
  ) {
    metrics.watchStatusIngest(this);
  }

  /** Reports received and not yet written. */
  get inFlight(): number {
    return this.batcher.pending;
  }

  /** Reports dropped because the queue was full. */
  get dropped(): number {
    return this.batcher.dropped;
  }

  async onModuleInit(): Promise<void> {
    const filter = this.config.mqttSharedGroup
      ? CloudSubscriptions.shared(this.config.mqttSharedGroup, CloudSubscriptions.status)
      : CloudSubscriptions.status;
    this.router.on('status', (topic, payload) => this.onMessage(topic, payload));
    await this.mqtt.subscribe(filter);
  }

  private onMessage(parsed: RoutedTopic<'status'>, raw: Buffer): void {
    const sender = `${parsed.account}/${parsed.clientId}`;
    if (raw.length > MAX_STATUS_PAYLOAD_BYTES) {
      this.rejected++;
      this.badMessages.warn(sender, { bytes: raw.length }, 'status report too large; dropped');
      return;
    }
    let report;
    let sentOn: Date | null = null;
    try {
      const payload = decodeKuraPayload(raw);
      report = readStatusReport(payload);
      sentOn = sentOnOf(payload);
    } catch (err) {
      this.rejected++;
      this.badMessages.warn(sender, {}, 'malformed status report; dropped', err);
      return;
    }
    if (!report) {
      this.rejected++;
      this.badMessages.warn(sender, {}, 'status report without valid status metrics; dropped');
      return;
    }
    this.batcher.push({ account: parsed.account, clientId: parsed.clientId, report, sentOn });
  }

  async beforeApplicationShutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.batcher.whenIdle(),
      new Promise((resolve) => (timer = setTimeout(resolve, SHUTDOWN_DRAIN_MS))),
    ]);
    clearTimeout(timer);
  }

  private async write(batch: VpnStatusUpdate[]): Promise<void> {
    try {
      await retryTransient(() => this.store.applyMany(batch));
      this.applied += batch.length;
      return;
    } catch (err) {
      if (batch.length === 1 || isTransientDbError(err)) throw err;
      // A report the database rejects must not take the rest of its batch down with it.
      this.logger.warn({ err, size: batch.length }, 'status batch rejected; storing its reports one by one');
    }
    for (const u of batch) {
      try {
        await retryTransient(() => this.store.applyMany([u]));
        this.applied++;
      } catch (err) {
        this.failed++;
        this.logger.error({ err, account: u.account, clientId: u.clientId }, 'storing status report failed');
      }
    }
  }
}
