import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
} from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { Repository } from 'typeorm';
import {
  buildCommandRequest,
  CloudSubscriptions,
  decodeKuraPayload,
  encodeKuraPayload,
  encodeVpnProfile,
  parseTopic,
  readCommandReply,
  ResponseCodes,
  Topics,
  type CommandReply,
  type VpnCommand,
} from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { KeyedSerialQueue } from '../common/keyed-serial-queue';
import { actorId, type Principal } from '../auth/principal';
import { DeviceConnectionEvents } from '../devices/device-connection.events';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { DeviceOperation, type OperationStatus } from './device-operation.entity';
import type { VpnStatusDto } from './dto/vpn.dto';
import { toVpnStatusDto } from './vpn-status.view';
import { VpnStatusStore } from './vpn-status.store';
import { OperationLog, type CommandTarget } from './operation-log';

interface PendingCommand {
  account: string;
  deviceId: string;
  settle(outcome: { reply: CommandReply } | { error: AppError; operationStatus: OperationStatus }): void;
}

/**
 * Sends VPN commands to devices with the Kura request/reply convention and
 * waits for the answer in memory (no database polling). A wait ends on the
 * reply, the timeout, the device dropping off the broker, or shutdown. Commands
 * to one device are queued, never interleaved; each is recorded as an operation.
 */
@Injectable()
export class VpnCommandService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('VpnCommands');
  private readonly pending = new Map<string, PendingCommand>();
  private readonly perDevice = new KeyedSerialQueue();
  private stopConnectionWatch?: () => void;
  private shuttingDown = false;

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly store: VpnStatusStore,
    private readonly operationLog: OperationLog,
    private readonly connectionEvents: DeviceConnectionEvents,
    @InjectRepository(DeviceOperation) private readonly operations: Repository<DeviceOperation>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async onModuleInit(): Promise<void> {
    this.mqtt.onMessage((topic, payload) => this.onReply(topic, payload));
    await this.mqtt.subscribe(CloudSubscriptions.replies(this.mqtt.clientId));
    this.stopConnectionWatch = this.connectionEvents.subscribe((change) => {
      if (change.status === 'CONNECTED') return;
      for (const p of this.pending.values()) {
        if (p.deviceId !== change.deviceId) continue;
        p.settle({
          error: new AppError(
            'DEVICE_NOT_CONNECTED',
            'Device disconnected',
            `The device went ${change.status} before answering`,
          ),
          operationStatus: 'FAILED',
        });
      }
    });
  }

  /** Operations this instance left RUNNING when it stopped are closed: their waits are gone. */
  async onApplicationBootstrap(): Promise<void> {
    const result = await this.operations
      .createQueryBuilder()
      .update()
      .set({
        status: 'FAILED',
        endedOn: () => 'now()',
        errorMessage: 'Interrupted: the API instance restarted',
      })
      .where('status = :running AND requester_client_id = :me', {
        running: 'RUNNING',
        me: this.mqtt.clientId,
      })
      .execute();
    if (result.affected)
      this.logger.warn(`closed ${result.affected} operation(s) left running by a previous run`);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    this.stopConnectionWatch?.();
    for (const p of this.pending.values()) {
      p.settle({
        error: new AppError('SERVICE_UNAVAILABLE', 'Service shutting down', 'Retry the command'),
        operationStatus: 'FAILED',
      });
    }
    // Let the settled commands record their outcome before the database closes.
    const deadline = Date.now() + 5000;
    while (this.perDevice.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }

  async execute(
    scopeId: string,
    deviceId: string,
    command: VpnCommand,
    timeoutMs: number,
    principal: Principal,
  ): Promise<VpnStatusDto> {
    const deadline = Date.now() + timeoutMs;
    this.assertRunning();
    return this.perDevice.run(deviceId, async () => {
      // Checked when the command's turn comes: the device may have dropped off meanwhile.
      this.assertRunning();
      const requestId = randomUUID();
      const start = await this.operationLog.start({
        scopeId,
        deviceId,
        command,
        requestId,
        requestedBy: actorId(principal),
        requesterClientId: this.mqtt.clientId,
      });
      if (!start.started) throw this.refusal(deviceId, start.target);
      return this.send(start.target, start.operationId, requestId, command, deadline);
    });
  }

  private assertRunning(): void {
    if (this.shuttingDown)
      throw new AppError('SERVICE_UNAVAILABLE', 'Service shutting down', 'Retry the command');
  }

  private refusal(deviceId: string, target: CommandTarget | null): AppError {
    if (!target) return AppError.notFound('Device', `No device ${deviceId} in this scope`);
    if (target.status !== 'ENABLED')
      return AppError.conflict('Device is disabled', 'Enable the device first');
    return new AppError(
      'DEVICE_NOT_CONNECTED',
      'Device not connected',
      `The device is ${target.connectionStatus}; it must be connected to the broker`,
    );
  }

  private async send(
    target: CommandTarget,
    operationId: string,
    requestId: string,
    command: VpnCommand,
    deadline: number,
  ): Promise<VpnStatusDto> {
    const started = Date.now();
    const finish = (status: OperationStatus, responseCode: number | null, errorMessage: string | null) =>
      this.operationLog.finish(operationId, {
        status,
        responseCode,
        errorMessage,
        durationMs: Date.now() - started,
      });

    const outcome = new Promise<
      { reply: CommandReply } | { error: AppError; operationStatus: OperationStatus }
    >((resolve) => {
      const timer = setTimeout(
        () =>
          settle({
            error: new AppError(
              'DEVICE_TIMEOUT',
              'Device did not answer in time',
              `No reply within the timeout`,
            ),
            operationStatus: 'TIMEOUT',
          }),
        Math.max(0, deadline - Date.now()),
      );
      const settle: PendingCommand['settle'] = (o) => {
        if (!this.pending.delete(requestId)) return;
        clearTimeout(timer);
        resolve(o);
      };
      this.pending.set(requestId, { account: target.accountName, deviceId: target.deviceId, settle });
    });

    const body = command === 'connect' ? encodeVpnProfile(this.profileFor(target)) : undefined;
    const payload = encodeKuraPayload(
      buildCommandRequest({ requestId, requesterClientId: this.mqtt.clientId, body }),
    );
    try {
      await this.mqtt.publish(Topics.command(target.accountName, target.clientId, command), payload);
    } catch (err) {
      this.pending.get(requestId)?.settle({
        error: new AppError(
          'SERVICE_UNAVAILABLE',
          'Broker unavailable',
          'The command could not be sent; retry later',
        ),
        operationStatus: 'FAILED',
      });
      this.logger.error({ err, requestId }, 'publishing command failed');
    }

    const result = await outcome;
    if ('error' in result) {
      await finish(result.operationStatus, null, result.error.details ?? result.error.message);
      throw result.error;
    }
    const { reply } = result;
    const failed = reply.code !== ResponseCodes.OK;
    const message = failed ? (reply.exceptionMessage ?? `The device answered with code ${reply.code}`) : null;
    // The reported status and the operation's outcome are written side by side (two connections).
    const [stored] = await Promise.all([
      reply.status ? this.store.apply(target.accountName, target.clientId, reply.status, null) : null,
      finish(failed ? 'FAILED' : 'COMPLETED', reply.code, message),
    ]);
    if (failed) throw new AppError('DEVICE_ERROR', 'Device reported an error', message ?? undefined);
    if (reply.status) {
      return toVpnStatusDto('CONNECTED', { ...reply.status, reportedOn: stored?.reportedOn ?? new Date() });
    }
    return toVpnStatusDto('CONNECTED', await this.store.get(target.deviceId));
  }

  private profileFor(target: CommandTarget) {
    const prefix = target.vpnSubnet.split('/')[1];
    return {
      type: 'wireguard' as const,
      tunnelAddress: `${target.tunnelIp}/${prefix}`,
      serverEndpoint: this.config.vpnServerEndpoint,
      serverPublicKey: this.config.vpnServerPublicKey,
      allowedIps: [target.vpnSubnet],
      dns: [],
      keepalive: this.config.vpnKeepalive,
    };
  }

  private onReply(topic: string, raw: Buffer): void {
    const parsed = parseTopic(topic);
    if (parsed?.kind !== 'reply' || parsed.requesterClientId !== this.mqtt.clientId) return;
    const pending = this.pending.get(parsed.requestId);
    // A reply must come from the account the command went to (the ACL lets a device publish replies only there).
    if (!pending || pending.account !== parsed.account) return;
    let reply: CommandReply | null = null;
    try {
      reply = readCommandReply(decodeKuraPayload(raw));
    } catch (err) {
      this.logger.warn({ topic, err }, 'malformed reply; ignored');
      return;
    }
    if (!reply) {
      this.logger.warn({ topic }, 'reply without response.code; ignored');
      return;
    }
    pending.settle({ reply });
  }
}
