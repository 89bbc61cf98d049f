import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  CloudSubscriptions,
  decodeKuraPayload,
  parseTopic,
  readBirthCertificate,
  type BirthCertificate,
  type KuraPayload,
} from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { KeyedSerialQueue } from '../common/keyed-serial-queue';
import { retryTransient } from '../common/transient-retry';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { DeviceConnectionEvents } from './device-connection.events';
import type { ConnectionStatus } from './device.entity';

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
 * messages are logged and dropped without affecting others.
 */
@Injectable()
export class DeviceLifecycleHandler implements OnModuleInit {
  private readonly logger = new Logger('DeviceLifecycle');
  private readonly queue = new KeyedSerialQueue();

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly dataSource: DataSource,
    private readonly connectionEvents: DeviceConnectionEvents,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    const filter = this.config.mqttSharedGroup
      ? CloudSubscriptions.shared(this.config.mqttSharedGroup, CloudSubscriptions.lifecycle)
      : CloudSubscriptions.lifecycle;
    this.mqtt.onMessage((topic, payload) => this.onMessage(topic, payload));
    await this.mqtt.subscribe(filter);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseTopic(topic);
    if (!parsed || (parsed.kind !== 'birth' && parsed.kind !== 'dc' && parsed.kind !== 'lwt')) return;
    if (payload.length > MAX_LIFECYCLE_PAYLOAD_BYTES) {
      this.logger.warn({ topic, bytes: payload.length }, 'lifecycle message too large; dropped');
      return;
    }
    const { kind, account, clientId } = parsed;
    void this.queue
      .run(`${account}/${clientId}`, () => retryTransient(() => this.apply(kind, account, clientId, payload)))
      .catch((err: unknown) => this.logger.error({ err, topic }, 'lifecycle message failed'));
  }

  /** Exposed for tests: applies one lifecycle message. */
  async apply(kind: 'birth' | 'dc' | 'lwt', account: string, clientId: string, raw: Buffer): Promise<void> {
    let payload: KuraPayload = { metrics: [] };
    if (raw.length > 0) {
      try {
        payload = decodeKuraPayload(raw);
      } catch (err) {
        // A lifecycle event without a readable payload still says what happened (LWT may be empty).
        if (kind === 'birth') {
          this.logger.warn({ account, clientId, err }, 'malformed BIRTH payload; dropped');
          return;
        }
      }
    }
    const birth: BirthCertificate | undefined = kind === 'birth' ? readBirthCertificate(payload) : undefined;
    const status = STATUS_OF[kind];
    const sentOn = typeof payload.timestamp === 'number' ? new Date(payload.timestamp) : null;
    const details: Record<string, unknown> = birth ? { ...birth } : {};
    const rows: Array<{ id: string; scope_id: string }> = await this.dataSource.query(
      `WITH d AS (
         UPDATE device d
            SET connection_status = $3,
                last_event_on = now(),
                display_name = CASE WHEN d.display_name = '' AND $4::text IS NOT NULL THEN $4 ELSE d.display_name END,
                model_id = COALESCE($5, d.model_id),
                serial_number = COALESCE($6, d.serial_number),
                firmware_version = COALESCE($7, d.firmware_version),
                connection_ip = COALESCE($8, d.connection_ip),
                application_ids = COALESCE($9, d.application_ids),
                vpn_public_key = COALESCE($10, d.vpn_public_key)
           FROM account a
          WHERE a.id = d.scope_id AND a.name = $1 AND d.client_id = $2
          RETURNING d.id, d.scope_id)
       INSERT INTO device_event (scope_id, device_id, type, sent_on, details)
       SELECT scope_id, id, $11, $12, $13::jsonb FROM d
       RETURNING device_id AS id, scope_id`,
      [
        account,
        clientId,
        status,
        birth?.displayName ?? null,
        birth?.modelId ?? null,
        birth?.serialNumber ?? null,
        birth?.firmwareVersion ?? null,
        birth?.connectionIp ?? null,
        birth ? birth.applicationIds.join(',').slice(0, 1024) : null,
        birth?.publicKey ?? null,
        EVENT_OF[kind],
        sentOn && !Number.isNaN(sentOn.getTime()) ? sentOn : null,
        JSON.stringify(details),
      ],
    );
    if (!rows[0]) {
      this.logger.warn({ account, clientId, kind }, 'lifecycle message for an unknown device; dropped');
      return;
    }
    this.connectionEvents.emit({ deviceId: rows[0].id, scopeId: rows[0].scope_id, status });
  }
}
