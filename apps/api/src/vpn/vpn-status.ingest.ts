import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { CloudSubscriptions, decodeKuraPayload, parseTopic, readStatusReport } from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { VpnStatusStore } from './vpn-status.store';
import { retryTransient } from '../common/transient-retry';

const MAX_STATUS_PAYLOAD_BYTES = 16 * 1024;

/**
 * Ingests the unsolicited `{account}/{clientId}/VPNCLIENT-V2/status` reports.
 * Ordering is enforced by the store, so reports may be applied concurrently;
 * bad reports are logged and dropped.
 */
@Injectable()
export class VpnStatusIngest implements OnModuleInit {
  private readonly logger = new Logger('VpnStatusIngest');
  /** Reports received and not yet written; visible to benchmarks and health. */
  inFlight = 0;
  applied = 0;

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly store: VpnStatusStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const filter = this.config.mqttSharedGroup
      ? CloudSubscriptions.shared(this.config.mqttSharedGroup, CloudSubscriptions.status)
      : CloudSubscriptions.status;
    this.mqtt.onMessage((topic, payload) => this.onMessage(topic, payload));
    await this.mqtt.subscribe(filter);
  }

  private onMessage(topic: string, raw: Buffer): void {
    const parsed = parseTopic(topic);
    if (parsed?.kind !== 'status') return;
    if (raw.length > MAX_STATUS_PAYLOAD_BYTES) {
      this.logger.warn({ topic, bytes: raw.length }, 'status report too large; dropped');
      return;
    }
    let report;
    let sentOn: Date | null = null;
    try {
      const payload = decodeKuraPayload(raw);
      report = readStatusReport(payload);
      if (typeof payload.timestamp === 'number') sentOn = new Date(payload.timestamp);
    } catch (err) {
      this.logger.warn({ topic, err }, 'malformed status report; dropped');
      return;
    }
    if (!report) {
      this.logger.warn({ topic }, 'status report without valid status metrics; dropped');
      return;
    }
    if (sentOn && Number.isNaN(sentOn.getTime())) sentOn = null;
    this.inFlight++;
    const accepted = report;
    void retryTransient(() => this.store.apply(parsed.account, parsed.clientId, accepted, sentOn))
      .then(
        () => this.applied++,
        (err: unknown) => this.logger.error({ err, topic }, 'storing status report failed'),
      )
      .finally(() => this.inFlight--);
  }
}
