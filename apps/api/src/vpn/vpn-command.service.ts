import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import {
  encodeVpnProfile,
  firstHostAddress,
  KeyedSerialQueue,
  readCommandReply,
  ResponseCodes,
  Topics,
  VPN_APP_ID,
  type CommandReply,
  type VpnCommand,
  type VpnProfile,
} from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { actorId, type Principal } from '../auth/principal';
import { DevicePeers, type CarryingGateway } from '../gateways/device-peers.service';
import { KuraRequestClient, KuraRequestError } from '../mqtt/kura-request.client';
import type { OperationStatus } from './device-operation.entity';
import { toOperationDto, type DeviceOperationDto, type VpnStatusDto } from './dto/vpn.dto';
import { toVpnStatusDto } from './vpn-status.view';
import type { VpnStatusUpdate } from './vpn-status.store';
import { InstanceLease } from '../instances/instance-lease';
import { INTERRUPTED_STOPPED, OperationsRepository, type CommandTarget } from './operations.repository';
import { VpnService } from './vpn.service';

/** Longest a command may wait for its device (the `timeout` bound), plus slack: older RUNNING rows are abandoned. */
const ABANDONED_AFTER_MS = 300_000 + 30_000;

interface Outcome {
  status: OperationStatus;
  responseCode: number | null;
  errorMessage: string | null;
}

/**
 * Sends VPN commands to devices through the Kura request client and waits for the answer.
 * Commands to one device are queued in this instance and never interleave across instances
 * (one RUNNING operation per device, enforced by the database); each is recorded as an
 * operation. A device with a WireGuard key tunnels through its gateway: `_connect` puts its
 * peer there and waits for the gateway's acknowledgement before the device gets its profile;
 * a failed connect and every disconnect take the peer out again.
 */
@Injectable()
export class VpnCommandService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('VpnCommands');
  private readonly perDevice = new KeyedSerialQueue();
  private shuttingDown = false;

  constructor(
    private readonly requests: KuraRequestClient,
    private readonly operations: OperationsRepository,
    private readonly devicePeers: DevicePeers,
    private readonly vpn: VpnService,
    private readonly lease: InstanceLease,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** Operations this instance left RUNNING when it stopped are closed: their waits are gone. */
  async onApplicationBootstrap(): Promise<void> {
    const closed = await this.operations.closeInterrupted(this.requests.clientId);
    if (closed) this.logger.warn(`closed ${closed} operation(s) left running by a previous run`);
  }

  /**
   * Pending waits are failed by the request client; let their commands record the outcome. What
   * is still RUNNING after that is closed here, and only then the instance's lease ends: a lease
   * gone with operations still RUNNING would leave them to the abandoned-operation rule.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.shuttingDown = true;
    const deadline = Date.now() + 5000;
    while (this.perDevice.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    try {
      const closed = await this.operations.closeOfInstances([this.lease.id], INTERRUPTED_STOPPED);
      if (closed) this.logger.warn(`closed ${closed} operation(s) still running at shutdown`);
      await this.lease.release();
    } catch (err) {
      // The lease then expires and a surviving instance closes them.
      this.logger.warn({ err }, 'could not close the operations still running at shutdown');
    }
  }

  async execute(
    scopeId: string,
    deviceId: string,
    command: VpnCommand,
    timeoutMs: number,
    principal: Principal,
  ): Promise<VpnStatusDto> {
    return this.launch(scopeId, deviceId, command, timeoutMs, principal);
  }

  /**
   * Starts the command and answers with its RUNNING operation as soon as it is recorded; the
   * command then runs to its outcome on its own, whatever happens to the request that asked, and
   * its outcome (errors included) is written on the operation. A refusal before the operation
   * exists (unknown, disabled or offline device, another command running) is thrown as with
   * `execute`.
   */
  async executeAsync(
    scopeId: string,
    deviceId: string,
    command: VpnCommand,
    timeoutMs: number,
    principal: Principal,
  ): Promise<DeviceOperationDto> {
    let recorded!: (operationId: string) => void;
    const started = new Promise<string>((resolve) => (recorded = resolve));
    const outcome = this.launch(scopeId, deviceId, command, timeoutMs, principal, recorded);
    const operationId = await Promise.race([
      started,
      outcome.then(() => {
        throw new Error('command ended without recording an operation');
      }),
    ]);
    // From here on the outcome belongs to the operation row, not to this request.
    outcome.catch((err: unknown) => {
      if (!(err instanceof AppError) || err.code === 'INTERNAL_ERROR')
        this.logger.error({ err, operationId }, 'asynchronous command failed');
    });
    const operation = await this.operations.findOne(scopeId, deviceId, operationId);
    // The row was inserted by this request: it is gone only if its device was deleted meanwhile.
    if (!operation) throw AppError.notFound('Operation', `No operation ${operationId} of device ${deviceId}`);
    return toOperationDto(operation);
  }

  private launch(
    scopeId: string,
    deviceId: string,
    command: VpnCommand,
    timeoutMs: number,
    principal: Principal,
    onRecorded?: (operationId: string) => void,
  ): Promise<VpnStatusDto> {
    const deadline = Date.now() + timeoutMs;
    this.assertRunning();
    return this.perDevice.run(deviceId, async () => {
      // Checked when the command's turn comes: the device may have dropped off meanwhile.
      this.assertRunning();
      const requestId = randomUUID();
      const record = {
        scopeId,
        deviceId,
        command,
        requestId,
        requestedBy: actorId(principal),
        requesterClientId: this.requests.clientId,
        instanceId: this.lease.id,
      };
      let start = await this.operations.start(record);
      if (
        !start.started &&
        start.busy &&
        (await this.operations.closeAbandoned(deviceId, ABANDONED_AFTER_MS))
      ) {
        start = await this.operations.start(record);
      }
      if (!start.started) {
        // A device that cannot hear the command loses its tunnel anyway when asked to disconnect.
        if (command === 'disconnect' && start.target) await this.devicePeers.detach(deviceId);
        throw this.refusal(deviceId, start.target, start.busy);
      }
      onRecorded?.(start.operationId);
      return this.run(start.target, start.operationId, requestId, command, deadline);
    });
  }

  private assertRunning(): void {
    if (this.shuttingDown)
      throw new AppError('SERVICE_UNAVAILABLE', 'Service shutting down', 'Retry the command');
  }

  private refusal(deviceId: string, target: CommandTarget | null, busy: boolean): AppError {
    if (!target) return AppError.notFound('Device', `No device ${deviceId} in this scope`);
    if (busy) {
      return AppError.conflict(
        'Another command is running',
        'A command sent through another API instance is still running for this device; retry when it ends',
      );
    }
    if (target.status !== 'ENABLED')
      return AppError.conflict('Device is disabled', 'Enable the device first');
    return new AppError(
      'DEVICE_NOT_CONNECTED',
      'Device not connected',
      `The device is ${target.connectionStatus}; it must be connected to the broker`,
    );
  }

  private async run(
    target: CommandTarget,
    operationId: string,
    requestId: string,
    command: VpnCommand,
    deadline: number,
  ): Promise<VpnStatusDto> {
    const started = Date.now();
    const finish = (o: Outcome, reported?: VpnStatusUpdate) =>
      this.operations.finish(operationId, { ...o, durationMs: Date.now() - started }, reported);
    let reply: CommandReply;
    // Whether this command changed the desired state: a connect refused before that (no gateway,
    // gateway offline) must not cut a tunnel the device already has.
    let placed = false;
    try {
      let body: Buffer | undefined;
      if (command === 'connect') {
        let gateway: CarryingGateway | null = null;
        if (target.publicKey) {
          gateway = await this.devicePeers.gatewayFor(target.deviceId);
          const serial = await this.devicePeers.place(gateway, {
            id: target.deviceId,
            scopeId: target.scopeId,
            publicKey: target.publicKey,
            tunnelIp: target.tunnelIp,
          });
          placed = true;
          await this.devicePeers.confirmed(gateway, serial, deadline);
        }
        body = encodeVpnProfile(this.profileFor(target, gateway));
      }
      reply = await this.send(target, command, requestId, deadline, body);
    } catch (err) {
      const { error, outcome } = this.failure(err);
      await finish(outcome);
      // A connect that did not complete leaves no peer behind; a disconnect always removes it.
      if (target.publicKey && (placed || command === 'disconnect'))
        await this.devicePeers.detach(target.deviceId);
      throw error;
    }
    const failed = reply.code !== ResponseCodes.OK;
    const message = failed ? (reply.exceptionMessage ?? `The device answered with code ${reply.code}`) : null;
    // The operation's outcome and the status the device reported are written in one statement.
    const stored = await finish(
      { status: failed ? 'FAILED' : 'COMPLETED', responseCode: reply.code, errorMessage: message },
      reply.status
        ? { account: target.accountName, clientId: target.clientId, report: reply.status, sentOn: null }
        : undefined,
    );
    if (target.publicKey && (failed || command === 'disconnect')) {
      await this.devicePeers.detach(target.deviceId, command === 'disconnect' ? deadline : undefined);
    }
    if (failed) throw new AppError('DEVICE_ERROR', 'Device reported an error', message ?? undefined);
    // A device on a gateway answers with its tunnel as the gateway sees it: read it all back.
    if (target.publicKey) return this.vpn.status(target.scopeId, target.deviceId);
    if (!reply.status) return this.vpn.status(target.scopeId, target.deviceId);
    return toVpnStatusDto({
      deviceConnection: 'CONNECTED',
      reported: { ...reply.status, reportedOn: stored?.reportedOn ?? new Date() },
      tunnel: null,
      needsGateway: false,
      freshSeconds: this.config.vpnHandshakeFreshSeconds,
    });
  }

  private async send(
    target: CommandTarget,
    command: VpnCommand,
    requestId: string,
    deadline: number,
    body: Buffer | undefined,
  ): Promise<CommandReply> {
    const raw = await this.requests.request({
      topic: Topics.command(target.accountName, target.clientId, command),
      account: target.accountName,
      app: VPN_APP_ID,
      targetId: target.deviceId,
      deadline,
      requestId,
      payload: body === undefined ? { metrics: [] } : { metrics: [], body },
    });
    const reply = readCommandReply(raw);
    if (!reply) {
      throw new AppError(
        'DEVICE_ERROR',
        'Malformed device reply',
        'The device replied without an INT32 response.code',
      );
    }
    return reply;
  }

  /** The HTTP error and the operation's outcome for a command that got no usable answer. */
  private failure(err: unknown): { error: AppError; outcome: Outcome } {
    if (err instanceof KuraRequestError) {
      const error =
        err.reason === 'timeout'
          ? new AppError('DEVICE_TIMEOUT', 'Device did not answer in time', 'No reply within the timeout')
          : err.reason === 'target-offline'
            ? new AppError('DEVICE_NOT_CONNECTED', 'Device disconnected', err.message)
            : err.reason === 'shutdown'
              ? new AppError('SERVICE_UNAVAILABLE', 'Service shutting down', 'Retry the command')
              : new AppError(
                  'SERVICE_UNAVAILABLE',
                  'Broker unavailable',
                  'The command could not be sent; retry later',
                );
      return {
        error,
        outcome: {
          status: err.reason === 'timeout' ? 'TIMEOUT' : 'FAILED',
          responseCode: null,
          errorMessage: error.details ?? error.message,
        },
      };
    }
    if (err instanceof AppError) {
      return {
        error: err,
        outcome: {
          status: err.code === 'GATEWAY_TIMEOUT' ? 'TIMEOUT' : 'FAILED',
          responseCode: null,
          errorMessage: `${err.message}: ${err.details ?? ''}`,
        },
      };
    }
    this.logger.error({ err }, 'command failed unexpectedly');
    return {
      error: new AppError('INTERNAL_ERROR', 'Internal error', 'The command failed; see the service log'),
      outcome: { status: 'FAILED', responseCode: null, errorMessage: 'internal error' },
    };
  }

  /**
   * The connect body. A device with a key gets its gateway (endpoint, key, the gateway's address in
   * its subnet); a keyless device (simulated driver) gets no server, since nothing carries its tunnel.
   * `allowedIps` holds the account subnet and the engineers' client pool, so replies to a client go
   * back through the tunnel (the gateway's rules decide who may talk to whom).
   */
  private profileFor(target: CommandTarget, gateway: CarryingGateway | null): VpnProfile {
    const prefix = target.vpnSubnet.split('/')[1];
    return {
      type: 'wireguard',
      tunnelAddress: `${target.tunnelIp}/${prefix}`,
      ...(gateway
        ? {
            serverEndpoint: gateway.endpoint,
            serverPublicKey: gateway.publicKey,
            gatewayAddress: firstHostAddress(target.vpnSubnet).split('/')[0],
          }
        : {}),
      allowedIps: [target.vpnSubnet, this.config.vpnClientPool],
      dns: [],
      keepalive: this.config.vpnKeepalive,
    };
  }
}
