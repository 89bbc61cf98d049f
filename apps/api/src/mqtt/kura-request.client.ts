import { BeforeApplicationShutdown, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import {
  CloudSubscriptions,
  decodeKuraPayload,
  encodeKuraPayload,
  GATEWAY_APP_ID,
  metric,
  Metrics,
  VPN_APP_ID,
  type KuraPayload,
  type RequestAppId,
} from '@app/protocol';
import { CloudMqttClient } from './cloud-mqtt.client';
import { ConnectionEvents } from './connection-events';
import { MqttRouter, type RoutedTopic } from './mqtt-router';

/** Why a request ended without a reply. */
export type RequestFailure = 'timeout' | 'target-offline' | 'shutdown' | 'not-sent';

export class KuraRequestError extends Error {
  override readonly name = 'KuraRequestError';

  constructor(
    readonly reason: RequestFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface KuraRequest {
  /** The request topic (`$EDC/{account}/{clientId}/{app}/EXEC|GET/...`). */
  topic: string;
  /** The account the target lives in: a reply is accepted only from there. */
  account: string;
  /** The application that answers: the reply comes on its REPLY topic. */
  app: RequestAppId;
  /** The device's or gateway's id: the wait fails at once when its link drops. */
  targetId: string;
  /** Epoch milliseconds after which the wait fails with 'timeout'. */
  deadline: number;
  /** Metrics beyond the two request metrics, and the body. */
  payload?: KuraPayload;
  /** Given when the caller records the request before sending it; a random UUID otherwise. */
  requestId?: string;
}

interface Pending {
  account: string;
  app: RequestAppId;
  targetId: string;
  settle(outcome: { reply: KuraPayload } | { error: KuraRequestError }): void;
}

/**
 * Kura's request/reply convention for everything the cloud asks a device or a gateway: the
 * request carries `request.id` and `requester.client.id` (this instance's MQTT client id), the
 * answer comes on `$EDC/{account}/{requester}/{app}/REPLY/{request.id}`. Waits are in memory (a
 * map of request id → pending promise) and end on the reply, the deadline, the target dropping
 * off the broker, or shutdown. Replies are routed to the asking instance by its client id.
 */
@Injectable()
export class KuraRequestClient implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('KuraRequests');
  private readonly pending = new Map<string, Pending>();
  private stopConnectionWatch?: () => void;
  private shuttingDown = false;

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly router: MqttRouter,
    private readonly connections: ConnectionEvents,
  ) {}

  get clientId(): string {
    return this.mqtt.clientId;
  }

  /** Requests waiting for their reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  async onModuleInit(): Promise<void> {
    this.router.on('reply', (topic, payload) => this.onReply(topic, payload));
    this.stopConnectionWatch = this.connections.subscribe((change) => {
      if (change.status === 'CONNECTED') return;
      this.failTarget(change.id, `The ${change.kind} went ${change.status} before answering`);
    });
    await this.mqtt.subscribe(CloudSubscriptions.replies(this.mqtt.clientId, VPN_APP_ID));
    await this.mqtt.subscribe(CloudSubscriptions.replies(this.mqtt.clientId, GATEWAY_APP_ID));
  }

  beforeApplicationShutdown(): void {
    this.shuttingDown = true;
    this.stopConnectionWatch?.();
    for (const p of this.pending.values()) {
      p.settle({ error: new KuraRequestError('shutdown', 'The service is shutting down') });
    }
  }

  /** Sends the request and resolves with the reply payload; rejects with a KuraRequestError. */
  async request(r: KuraRequest): Promise<KuraPayload> {
    if (this.shuttingDown) throw new KuraRequestError('shutdown', 'The service is shutting down');
    const requestId = r.requestId ?? randomUUID();
    const outcome = new Promise<{ reply: KuraPayload } | { error: KuraRequestError }>((resolve) => {
      const timer = setTimeout(
        () => settle({ error: new KuraRequestError('timeout', 'No reply within the timeout') }),
        Math.max(0, r.deadline - Date.now()),
      );
      const settle: Pending['settle'] = (o) => {
        if (!this.pending.delete(requestId)) return;
        clearTimeout(timer);
        resolve(o);
      };
      this.pending.set(requestId, { account: r.account, app: r.app, targetId: r.targetId, settle });
    });
    const payload: KuraPayload = {
      timestamp: Date.now(),
      ...r.payload,
      metrics: [
        metric.string(Metrics.REQUEST_ID, requestId),
        metric.string(Metrics.REQUESTER_CLIENT_ID, this.mqtt.clientId),
        ...(r.payload?.metrics ?? []),
      ],
    };
    try {
      await this.mqtt.publish(r.topic, encodeKuraPayload(payload));
    } catch (err) {
      this.logger.error({ err, requestId, topic: r.topic }, 'publishing a request failed');
      this.pending.get(requestId)?.settle({
        error: new KuraRequestError('not-sent', 'The broker is unavailable; the request was not sent'),
      });
    }
    const result = await outcome;
    if ('error' in result) throw result.error;
    return result.reply;
  }

  /** Fails every wait for `targetId` at once (its link dropped, or it was deleted). */
  failTarget(targetId: string, why: string): void {
    for (const p of this.pending.values()) {
      if (p.targetId === targetId) p.settle({ error: new KuraRequestError('target-offline', why) });
    }
  }

  private onReply(topic: RoutedTopic<'reply'>, raw: Buffer): void {
    if (topic.requesterClientId !== this.mqtt.clientId) return;
    const pending = this.pending.get(topic.requestId);
    // A reply must come from the account and application the request went to (the ACL lets a
    // device or gateway publish replies only under its own account and application).
    if (!pending || pending.account !== topic.account || pending.app !== topic.app) return;
    let reply: KuraPayload;
    try {
      reply = decodeKuraPayload(raw);
    } catch (err) {
      this.logger.warn(
        { account: topic.account, requestId: topic.requestId, err },
        'malformed reply; ignored',
      );
      return;
    }
    pending.settle({ reply });
  }
}
