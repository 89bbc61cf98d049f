import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { disableNagle } from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { CLOUD_USERNAME } from './broker-identity';
import { EmbeddedBroker } from './embedded-broker';

export type MqttMessageListener = (topic: string, payload: Buffer) => void;

/**
 * The cloud's one MQTT client. Its client id is stable per instance and its
 * session persistent (clean: false) with QoS 1, so replies and events queued
 * while it reconnects are delivered afterwards (docs/protocol.md).
 * With the embedded broker it is no MQTT client at all: it subscribes and publishes through the
 * broker inside this process (EmbeddedBroker.subscribeInternal), which it cannot lose.
 */
@Injectable()
export class CloudMqttClient implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('CloudMqttClient');
  private client?: MqttClient;
  private readonly subscriptions = new Set<string>();
  private readonly listeners: MqttMessageListener[] = [];
  private readonly connectedListeners: Array<(linkLostAt: Date | null) => void> = [];
  /** When the last working connection was lost; null before the first connect of this process. */
  private linkLostAt: Date | null = null;
  private linkUp = false;
  /** Settled by the first CONNACK: resolved when accepted, rejected when the broker refuses the cloud. */
  private firstConnect?: Promise<void>;
  /** With the embedded broker: linked to it inside this process instead of over MQTT. */
  private inProcess = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly embedded: EmbeddedBroker,
  ) {}

  get clientId(): string {
    return this.config.mqttClientId;
  }

  get connected(): boolean {
    if (this.inProcess) return this.linkUp;
    return this.client?.connected ?? false;
  }

  get brokerUrl(): string {
    return this.config.mqttUrl ?? this.embedded.url;
  }

  /** Registers a topic filter; (re)subscribed on every connect. */
  async subscribe(filter: string): Promise<void> {
    this.subscriptions.add(filter);
    if (this.inProcess) {
      if (this.linkUp) await this.embedded.subscribeInternal(filter, this.deliver);
      return;
    }
    if (this.client?.connected) await this.client.subscribeAsync(filter, { qos: 1 });
  }

  /** Drops a topic filter registered with subscribe. */
  async unsubscribe(filter: string): Promise<void> {
    this.subscriptions.delete(filter);
    if (this.inProcess) return this.embedded.unsubscribeInternal(filter);
    if (this.client?.connected) await this.client.unsubscribeAsync(filter);
  }

  /**
   * Called after every (re)connect once the subscriptions are in place: what was published while
   * the cloud was away may be lost (a broker restart, a clean session), so listeners re-check.
   * `linkLostAt` is when this process lost its previous connection (null on its first connect).
   */
  onSubscribed(listener: (linkLostAt: Date | null) => void): void {
    this.connectedListeners.push(listener);
  }

  onMessage(listener: MqttMessageListener): void {
    this.listeners.push(listener);
  }

  /**
   * Resolves once connected; rejects when the broker refused the cloud's credentials (CONNACK 4/5),
   * or after `timeoutMs` without a connection.
   */
  async whenConnected(timeoutMs: number): Promise<void> {
    if (this.connected) return;
    if (!this.firstConnect) throw new Error('MQTT client not started');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`no connection to the MQTT broker at ${this.redactedUrl()} within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.firstConnect, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async publish(topic: string, payload: Buffer): Promise<void> {
    if (this.inProcess) {
      if (!this.linkUp) throw new Error('MQTT client not connected');
      return this.embedded.publishInternal(topic, payload);
    }
    if (!this.client?.connected) throw new Error('MQTT client not connected');
    await this.client.publishAsync(topic, payload, { qos: 1 });
  }

  /** Every message to the listeners, in order; a listener that throws does not stop the others. */
  private readonly deliver = (topic: string, payload: Buffer): void => {
    for (const l of this.listeners) {
      try {
        l(topic, payload);
      } catch (err) {
        this.logger.error({ err, topic }, 'message handler failed');
      }
    }
  };

  async onApplicationBootstrap(): Promise<void> {
    if (this.embedded.enabled) return this.linkInProcess();
    const options: IClientOptions = {
      clientId: this.config.mqttClientId,
      clean: this.config.mqttCleanSession,
      keepalive: 30,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      protocolVersion: 4,
    };
    if (this.embedded.enabled) {
      options.username = CLOUD_USERNAME;
      options.password = this.embedded.cloudPassword;
    } else if (this.config.mqttUsername) {
      options.username = this.config.mqttUsername;
      options.password = this.config.mqttPassword;
    }
    if (this.config.mqttBrokerKind === 'external-open') {
      this.logger.warn(
        'MQTT_BROKER_KIND=external-open: the broker at MQTT_URL does not check device or gateway ' +
          'credentials or topics through this service; anyone who reaches it can speak for any device ' +
          '(set MQTT_BROKER_KIND=mosquitto-dynsec or emqx, docs/brokers.md)',
      );
    }
    const client = disableNagle(connect(this.brokerUrl, options));
    this.client = client;
    this.firstConnect = new Promise<void>((resolve, reject) => {
      const onError = (err: Error & { code?: number }) => {
        // CONNACK 4 (bad user name or password) / 5 (not authorized): retrying will not help.
        if (err.code === 4 || err.code === 5) {
          client.off('connect', onConnect);
          reject(new Error(`the MQTT broker refused the cloud's credentials: ${err.message}`));
        }
      };
      const onConnect = () => {
        client.off('error', onError);
        resolve();
      };
      client.once('connect', onConnect);
      client.on('error', onError);
    });
    // Observed by whenConnected; a refusal is also logged by the error handler below.
    this.firstConnect.catch(() => undefined);
    client.on('connect', (connack) => {
      this.linkUp = true;
      this.logger.log(
        `connected to ${this.redactedUrl()} as ${this.clientId} (session present: ${connack.sessionPresent})`,
      );
      const filters = [...this.subscriptions];
      const linkLostAt = this.linkLostAt;
      const subscribed = () => {
        if (this.embedded.enabled) this.embedded.admitEdgeClients();
        for (const l of this.connectedListeners) l(linkLostAt);
      };
      if (filters.length === 0) subscribed();
      else
        client.subscribe(filters, { qos: 1 }, (err) => {
          if (err) return this.logger.error({ err }, 'subscribe failed');
          subscribed();
        });
    });
    client.on('message', this.deliver);
    client.on('error', (err) => this.logger.warn(`MQTT error: ${err.message}`));
    client.on('offline', () => this.logger.warn('MQTT client offline; reconnecting'));
    // The first close after a connect: later failed attempts do not move it.
    client.on('close', () => {
      if (this.linkUp) this.linkLostAt = new Date();
      this.linkUp = false;
    });
    await new Promise<void>((resolve) => {
      // Start-up does not wait forever for a broker that is down: the client keeps retrying
      // and /health/ready reports it until it is back.
      const timer = setTimeout(resolve, 10_000);
      client.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /**
   * The embedded broker runs in this process: the cloud subscribes and publishes through it
   * directly (EmbeddedBroker.subscribeInternal). Up as soon as the subscriptions are in place; it
   * never drops, so `onSubscribed` listeners run once, as after a first connect.
   */
  private async linkInProcess(): Promise<void> {
    this.inProcess = true;
    for (const f of this.subscriptions) await this.embedded.subscribeInternal(f, this.deliver);
    this.linkUp = true;
    this.firstConnect = Promise.resolve();
    this.logger.log(`linked in process to the embedded broker as ${this.clientId}`);
    this.embedded.admitEdgeClients();
    for (const l of this.connectedListeners) l(null);
  }

  private redactedUrl(): string {
    const u = new URL(this.brokerUrl);
    u.password = '';
    u.username = '';
    return u.toString();
  }

  /** Before the embedded broker closes, so the session ends cleanly. */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.inProcess) {
      this.linkUp = false;
      for (const f of this.subscriptions) await this.embedded.unsubscribeInternal(f);
      return;
    }
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync();
  }
}
