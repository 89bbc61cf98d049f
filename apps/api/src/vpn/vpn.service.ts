import { Inject, Injectable } from '@nestjs/common';
import { firstHostAddress } from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { AppError } from '../common/app-error';
import { paginate, type ListResult } from '../common/list';
import { DevicesService } from '../devices/devices.service';
import { DeviceOperation } from './device-operation.entity';
import {
  toOperationDto,
  type DeviceOperationDto,
  type OperationListQueryDto,
  type VpnStatusDto,
} from './dto/vpn.dto';
import { OperationsRepository } from './operations.repository';
import { VpnStatusStore, type DeviceStatusView } from './vpn-status.store';
import type { PendingTokenCheck } from '../auth/token-check';
import { UUID_PATTERN } from '../common/uuid.pipe';
import { toVpnStatusDto } from './vpn-status.view';

/** Reads of the VPN side: the last reported status (never waits on the device) and the command history. */
@Injectable()
export class VpnService {
  constructor(
    private readonly statuses: VpnStatusStore,
    private readonly operationRows: OperationsRepository,
    private readonly devices: DevicesService,
    @InjectRepository(DeviceOperation) private readonly operations: Repository<DeviceOperation>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The status route: one statement reads the token row and the device's status view (this is
   * what fleet dashboards poll, so one round trip, not two); `check` applies the guard's checks to
   * that row before anything of the device is used. Errors in the guard's order: 401, then the
   * scope (400/403) and the permission (403), then a malformed device id (400), then 404.
   */
  async statusForToken(check: PendingTokenCheck, deviceId: string): Promise<VpnStatusDto> {
    const id = UUID_PATTERN.test(deviceId) ? deviceId.toLowerCase() : null;
    const read = await this.statuses.viewWithToken(check.tokenId, check.requestedScopeId, id);
    await check.complete(read?.token ?? null, read?.scopePath ?? null);
    if (!id) throw AppError.invalid('Invalid id', 'The id in the path must be a UUID');
    const view = read?.view;
    if (!view) throw AppError.notFound('Device', `No device ${deviceId} in this scope`);
    return this.toStatusDto(view);
  }

  /** The status of a device of the scope (after a command; the caller is authorised already). */
  async status(scopeId: string, deviceId: string): Promise<VpnStatusDto> {
    const view = await this.statuses.view(scopeId, deviceId);
    if (!view) throw AppError.notFound('Device', `No device ${deviceId} in this scope`);
    return this.toStatusDto(view);
  }

  private toStatusDto(view: DeviceStatusView): VpnStatusDto {
    return toVpnStatusDto({
      deviceConnection: view.connectionStatus,
      reported: view.reported
        ? {
            connected: view.reported.connected ?? false,
            ipAddress: view.reported.ipAddress ?? '',
            status: view.reported.status ?? 'idle',
            statusCode: view.reported.statusCode ?? '000',
            reportedOn: view.reported.reportedOn,
          }
        : null,
      tunnel: view.peer
        ? {
            gatewayId: view.peer.gatewayId,
            gatewayAddress: firstHostAddress(view.vpnSubnet).split('/')[0],
            lastHandshakeOn: view.peer.lastHandshakeOn,
            rxBytes: view.peer.rxBytes,
            txBytes: view.peer.txBytes,
          }
        : null,
      needsGateway: view.keyed,
      freshSeconds: this.config.vpnHandshakeFreshSeconds,
    });
  }

  /** One operation of the device; another device's (or tenant's) operation is simply not found. */
  async getOperation(scopeId: string, deviceId: string, operationId: string): Promise<DeviceOperationDto> {
    const operation = await this.operationRows.findOne(scopeId, deviceId, operationId);
    if (!operation) {
      await this.devices.findOne(scopeId, deviceId);
      throw AppError.notFound('Operation', `No operation ${operationId} of device ${deviceId}`);
    }
    return toOperationDto(operation);
  }

  async listOperations(
    scopeId: string,
    deviceId: string,
    q: OperationListQueryDto,
  ): Promise<ListResult<DeviceOperationDto>> {
    await this.devices.findOne(scopeId, deviceId);
    return paginate(
      { from: this.operations, where: { scopeId, deviceId }, order: { startedOn: 'DESC', id: 'ASC' } },
      q,
      toOperationDto,
    );
  }
}
