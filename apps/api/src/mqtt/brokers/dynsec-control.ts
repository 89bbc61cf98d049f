import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { CloudMqttClient } from '../cloud-mqtt.client';
import { DYNSEC_RESPONSE_TOPIC, MqttRouter } from '../mqtt-router';

/** Where the cloud sends commands to Mosquitto's dynamic-security plugin. */
export const DYNSEC_CONTROL_TOPIC = '$CONTROL/dynamic-security/v1';

export interface DynsecCommand {
  command: string;
  [field: string]: unknown;
}

/** One entry of the plugin's `{"responses":[…]}`: `error` is set when the command failed. */
export interface DynsecResponse {
  command: string;
  error?: string;
  data?: unknown;
  correlationData?: string;
}

/** The most commands one `$CONTROL` publish carries. */
const MAX_BATCH = 100;

interface Waiting {
  resolve(r: DynsecResponse): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Talks to Mosquitto's dynamic-security plugin over the cloud's own MQTT client. Commands issued
 * in the same tick go out in one publish (`{"commands":[…]}`); each carries a correlationData the
 * plugin echoes in its response (on DYNSEC_RESPONSE_TOPIC, which reaches this class through the
 * MqttRouter), so answers find their callers however the batches were cut.
 */
@Injectable()
export class DynsecControl implements OnApplicationShutdown {
  private readonly logger = new Logger('DynsecControl');
  private readonly waiting = new Map<string, Waiting>();
  private queue: Array<{ command: DynsecCommand; correlationData: string }> = [];
  private flushScheduled = false;
  private readonly prefix = randomBytes(6).toString('hex');
  private seq = 0;
  /** How long a command may wait for its response. */
  timeoutMs = 10_000;

  constructor(
    private readonly mqtt: CloudMqttClient,
    router: MqttRouter,
  ) {
    router.on('dynsec-response', (_topic, payload) => this.onResponse(payload));
  }

  /** Reads the response topic; must be called before the client connects (module init). */
  listen(): Promise<void> {
    return this.mqtt.subscribe(DYNSEC_RESPONSE_TOPIC);
  }

  /**
   * Sends the commands and resolves with their responses, in order. A response carrying an
   * `error` is returned, not thrown (callers know which errors they expect); the promise rejects
   * when the broker cannot be reached or does not answer within timeoutMs.
   */
  run(commands: DynsecCommand[], timeoutMs = this.timeoutMs): Promise<DynsecResponse[]> {
    return Promise.all(commands.map((command) => this.enqueue(command, timeoutMs)));
  }

  private enqueue(command: DynsecCommand, timeoutMs: number): Promise<DynsecResponse> {
    const correlationData = `${this.prefix}-${++this.seq}`;
    return new Promise<DynsecResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(correlationData);
        reject(new Error(`no answer to dynsec command ${command.command} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(correlationData, { resolve, reject, timer });
      this.queue.push({ command, correlationData });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      const payload = JSON.stringify({
        commands: batch.map(({ command, correlationData }) => ({ ...command, correlationData })),
      });
      this.mqtt.publish(DYNSEC_CONTROL_TOPIC, Buffer.from(payload)).catch((err: Error) => {
        for (const { correlationData } of batch) this.settle(correlationData, err);
      });
    }
  }

  /** Commands still waiting fail at once instead of holding the process for their timeout. */
  onApplicationShutdown(): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, new Error('service shutting down'));
  }

  private onResponse(payload: Buffer): void {
    let responses: unknown;
    try {
      responses = (JSON.parse(payload.toString('utf8')) as { responses?: unknown }).responses;
    } catch {
      this.logger.warn('unreadable dynsec response; ignored');
      return;
    }
    if (!Array.isArray(responses)) return;
    for (const r of responses as DynsecResponse[]) {
      if (typeof r?.correlationData === 'string') this.settle(r.correlationData, r);
    }
  }

  private settle(correlationData: string, outcome: DynsecResponse | Error): void {
    const waiting = this.waiting.get(correlationData);
    if (!waiting) return; // another instance's command, or one that timed out
    this.waiting.delete(correlationData);
    clearTimeout(waiting.timer);
    if (outcome instanceof Error) waiting.reject(outcome);
    else waiting.resolve(outcome);
  }
}
