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
import { DataSource, Repository } from 'typeorm';
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
import type { Principal } from '../auth/principal';
import { DeviceConnectionEvents } from '../devices/device-connection.events';
import { DevicesService } from '../devices/devices.service';
import type { Device } from '../devices/device.entity';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { DeviceOperation, type OperationStatus } from './device-operation.entity';
import type { VpnStatusDto } from './dto/vpn.dto';
import { toVpnStatusDto } from './vpn-status.view';
import { VpnStatusStore } from './vpn-status.store';

interface PendingCommand {
  account: string;
  deviceId: string;
  settle(outcome: { reply: CommandReply } | { error: AppError; operationStatus: OperationStatus }): void;
}

interface AccountInfo {
  name: string;
  vpnSubnet: string;
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
  private readonly accounts = new Map<string, AccountInfo>();
  private stopConnectionWatch?: () => void;
  private shuttingDown = false;

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly devices: DevicesService,
    private readonly store: VpnStatusStore,
    private readonly dataSource: DataSource,
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
    const device = await this.devices.findOne(scopeId, deviceId);
    this.assertCommandable(device);
    return this.perDevice.run(deviceId, async () => {
      // The device may have dropped off while this command waited its turn.
      this.assertCommandable(await this.devices.findOne(scopeId, deviceId));
      return this.send(device, command, deadline, principal);
    });
  }

  private assertCommandable(device: Device): void {
    if (this.shuttingDown)
      throw new AppError('SERVICE_UNAVAILABLE', 'Service shutting down', 'Retry the command');
    if (device.status !== 'ENABLED') throw AppError.conflict('Device is disabled', 'Enable the device first');
    if (device.connectionStatus !== 'CONNECTED') {
      throw new AppError(
        'DEVICE_NOT_CONNECTED',
        'Device not connected',
        `The device is ${device.connectionStatus}; it must be connected to the broker`,
      );
    }
  }

  private async account(scopeId: string): Promise<AccountInfo> {
    const cached = this.accounts.get(scopeId);
    if (cached) return cached;
    const rows: Array<{ name: string; vpn_subnet: string }> = await this.dataSource.query(
      'SELECT name, vpn_subnet::text FROM account WHERE id = $1',
      [scopeId],
    );
    if (!rows[0]) throw AppError.notFound('Account');
    // Account names and subnets never change, so this cache cannot go stale.
    const info = { name: rows[0].name, vpnSubnet: rows[0].vpn_subnet };
    this.accounts.set(scopeId, info);
    return info;
  }

  private async send(
    device: Device,
    command: VpnCommand,
    deadline: number,
    principal: Principal,
  ): Promise<VpnStatusDto> {
    const account = await this.account(device.scopeId ?? '');
    const requestId = randomUUID();
    const started = Date.now();
    const op = await this.operations.save(
      this.operations.create({
        scopeId: device.scopeId ?? '',
        deviceId: device.id,
        requestId,
        command,
        status: 'RUNNING',
        requestedBy: principal.userId ?? principal.apiKeyId,
        requesterClientId: this.mqtt.clientId,
      }),
    );
    const finish = (status: OperationStatus, responseCode: number | null, errorMessage: string | null) =>
      this.operations.update(
        { id: op.id },
        { status, responseCode, errorMessage, endedOn: new Date(), durationMs: Date.now() - started },
      );

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
      this.pending.set(requestId, { account: account.name, deviceId: device.id, settle });
    });

    const body = command === 'connect' ? encodeVpnProfile(this.profileFor(device, account)) : undefined;
    const payload = encodeKuraPayload(
      buildCommandRequest({ requestId, requesterClientId: this.mqtt.clientId, body }),
    );
    try {
      await this.mqtt.publish(Topics.command(account.name, device.clientId, command), payload);
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
    const stored = reply.status
      ? await this.store.apply(account.name, device.clientId, reply.status, null)
      : null;
    if (reply.code !== ResponseCodes.OK) {
      const message = reply.exceptionMessage ?? `The device answered with code ${reply.code}`;
      await finish('FAILED', reply.code, message);
      throw new AppError('DEVICE_ERROR', 'Device reported an error', message);
    }
    await finish('COMPLETED', reply.code, null);
    if (reply.status) {
      return toVpnStatusDto('CONNECTED', { ...reply.status, reportedOn: stored?.reportedOn ?? new Date() });
    }
    return toVpnStatusDto('CONNECTED', await this.store.get(device.id));
  }

  private profileFor(device: Device, account: AccountInfo) {
    const prefix = account.vpnSubnet.split('/')[1];
    return {
      type: 'wireguard' as const,
      tunnelAddress: `${device.tunnelIp}/${prefix}`,
      serverEndpoint: this.config.vpnServerEndpoint,
      serverPublicKey: this.config.vpnServerPublicKey,
      allowedIps: [account.vpnSubnet],
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
