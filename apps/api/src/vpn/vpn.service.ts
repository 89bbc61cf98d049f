import { Inject, Injectable } from '@nestjs/common';
import { firstHostAddress } from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
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
import { toVpnStatusDto } from './vpn-status.view';

interface StatusRow {
  connection_status: string;
  keyed: boolean;
  connected: boolean | null;
  ip_address: string | null;
  status: string | null;
  status_code: string | null;
  reported_on: Date | null;
  gateway_id: string | null;
  vpn_subnet: string;
  last_handshake_on: Date | null;
  rx_bytes: string | null;
  tx_bytes: string | null;
}

/** Reads of the VPN side: the last reported status (never waits on the device) and the command history. */
@Injectable()
export class VpnService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly devices: DevicesService,
    @InjectRepository(DeviceOperation) private readonly operations: Repository<DeviceOperation>,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** One query of primary-key lookups: this route is what fleet dashboards poll. */
  async status(scopeId: string, deviceId: string): Promise<VpnStatusDto> {
    const rows: StatusRow[] = await this.dataSource.query(
      `SELECT d.connection_status, d.vpn_public_key IS NOT NULL AS keyed,
              s.connected, s.ip_address, s.status, s.status_code, s.reported_on,
              p.gateway_id, a.vpn_subnet::text AS vpn_subnet, p.last_handshake_on, p.rx_bytes, p.tx_bytes
         FROM device d
         JOIN account a ON a.id = d.scope_id
         LEFT JOIN device_vpn_status s ON s.device_id = d.id
         LEFT JOIN gateway_peer p ON p.device_id = d.id AND NOT p.removed
        WHERE d.id = $1 AND d.scope_id = $2`,
      [deviceId, scopeId],
    );
    const row = rows[0];
    if (!row) throw AppError.notFound('Device', `No device ${deviceId} in this scope`);
    return toVpnStatusDto({
      deviceConnection: row.connection_status,
      reported: row.reported_on
        ? {
            connected: row.connected ?? false,
            ipAddress: row.ip_address ?? '',
            status: row.status ?? 'idle',
            statusCode: row.status_code ?? '000',
            reportedOn: row.reported_on,
          }
        : null,
      tunnel: row.gateway_id
        ? {
            gatewayId: row.gateway_id,
            gatewayAddress: firstHostAddress(row.vpn_subnet).split('/')[0],
            lastHandshakeOn: row.last_handshake_on,
            rxBytes: Number(row.rx_bytes ?? 0),
            txBytes: Number(row.tx_bytes ?? 0),
          }
        : null,
      needsGateway: row.keyed,
      freshSeconds: this.config.vpnHandshakeFreshSeconds,
    });
  }

  /** One operation of the device; another device's (or tenant's) operation is simply not found. */
  async getOperation(scopeId: string, deviceId: string, operationId: string): Promise<DeviceOperationDto> {
    const operation = await this.operations.findOneBy({ id: operationId, deviceId, scopeId });
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
