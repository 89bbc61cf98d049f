import { Injectable, Logger } from '@nestjs/common';
import { parseTopic, type ParsedTopic } from '@app/protocol';
import { CloudMqttClient } from './cloud-mqtt.client';

/** Where Mosquitto's dynamic-security plugin answers the commands the cloud sends it. */
export const DYNSEC_RESPONSE_TOPIC = '$CONTROL/dynamic-security/v1/response';

/** Topics of the broker itself, not of the device protocol (so not in parseTopic). */
type BrokerTopic = { kind: 'dynsec-response' };
type RouterTopic = ParsedTopic | BrokerTopic;
type TopicKind = RouterTopic['kind'];
export type RoutedTopic<K extends TopicKind> = Extract<RouterTopic, { kind: K }>;
export type TopicHandler<K extends TopicKind> = (topic: RoutedTopic<K>, payload: Buffer) => void;

/**
 * The one entry point of inbound MQTT messages: each topic is parsed once (parseTopic, which
 * knows every topic of the protocol, plus the broker's own control topics the cloud reads) and the
 * message goes to the handlers of its kind. A
 * handler that throws is logged and does not keep the message from the others.
 */
@Injectable()
export class MqttRouter {
  private readonly logger = new Logger('MqttRouter');
  private readonly handlers = new Map<TopicKind, Array<TopicHandler<TopicKind>>>();

  constructor(mqtt: CloudMqttClient) {
    mqtt.onMessage((topic, payload) => this.dispatch(topic, payload));
  }

  on<K extends TopicKind>(kind: K, handler: TopicHandler<K>): void {
    const list = this.handlers.get(kind) ?? [];
    list.push(handler as unknown as TopicHandler<TopicKind>);
    this.handlers.set(kind, list);
  }

  private dispatch(topic: string, payload: Buffer): void {
    const parsed: RouterTopic | null =
      topic === DYNSEC_RESPONSE_TOPIC ? { kind: 'dynsec-response' } : parseTopic(topic);
    if (!parsed) {
      this.logger.debug({ topic }, 'message on a topic outside the protocol; ignored');
      return;
    }
    for (const handler of this.handlers.get(parsed.kind) ?? []) {
      try {
        handler(parsed, payload);
      } catch (err) {
        this.logger.error({ err, topic }, 'message handler failed');
      }
    }
  }
}
