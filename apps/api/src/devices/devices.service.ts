import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository } from 'typeorm';
import { AppError } from '../common/app-error';
import { paginate, type ListResult } from '../common/list';
import { queryCursor } from '../common/list-cursor';
import { digest, generateSecret } from '../common/secrets';
import { BrokerCredentials } from '../mqtt/broker-credentials';
import { DevicePeers } from '../gateways/device-peers.service';
import { GatewayRepository } from '../gateways/gateway.repository';
import { AccountsRepository } from '../accounts/accounts.repository';
import { Device } from './device.entity';
import { DeviceEvent } from './device-event.entity';
import { toDeviceEventDto, type DeviceEventDto, type DeviceEventListQueryDto } from './dto/device-event.dto';
import {
  toDeviceDto,
  type CreateDeviceDto,
  type DeviceCredentialsDto,
  type DeviceDto,
  type DeviceListQueryDto,
  type UpdateDeviceDto,
} from './dto/device.dto';
import { DevicesRepository, type DeviceChanges } from './devices.repository';
import { TunnelAddressPool } from './tunnel-address.pool';

/** The device registry. Every query takes the scope first: another tenant's device is simply not found. */
@Injectable()
export class DevicesService {
  constructor(
    @InjectRepository(Device) private readonly devices: Repository<Device>,
    @InjectRepository(DeviceEvent) private readonly events: Repository<DeviceEvent>,
    private readonly repository: DevicesRepository,
    private readonly accounts: AccountsRepository,
    private readonly dataSource: DataSource,
    private readonly tunnelPool: TunnelAddressPool,
    private readonly brokerCredentials: BrokerCredentials,
    private readonly gateways: GatewayRepository,
    private readonly devicePeers: DevicePeers,
  ) {}

  /** A pinned gateway must be one the device's account may use: its own or an ancestor's. */
  private async checkPin(scopeId: string, gatewayId: string | null | undefined): Promise<void> {
    if (gatewayId === undefined || gatewayId === null) return;
    const usable = await this.gateways.usableBy(scopeId);
    if (!usable.some((g) => g.id === gatewayId)) {
      throw AppError.invalid(
        'Unknown gateway',
        `No gateway ${gatewayId} in this account or its ancestors; a device can only be pinned to one of those`,
      );
    }
  }

  async findOne(scopeId: string, id: string): Promise<Device> {
    const device = await this.repository.findOne(scopeId, id);
    if (!device) throw AppError.notFound('Device', `No device ${id} in this scope`);
    return device;
  }

  async get(scopeId: string, id: string): Promise<DeviceDto> {
    return toDeviceDto(await this.findOne(scopeId, id));
  }

  /**
   * A page of the scope's devices as the list body's JSON text (DeviceListDto), written by the
   * page statement and sent as it is.
   */
  listJson(scopeId: string, q: DeviceListQueryDto): Promise<string> {
    const { clientId, status, connectionStatus, matchTerm } = q;
    return this.repository.listPageJson(
      scopeId,
      { clientId, status, connectionStatus, matchTerm },
      { offset: q.offset, limit: q.limit, askTotalCount: q.askTotalCount, cursor: queryCursor(q) },
    );
  }

  /** Creates the device with a tunnel address that stays unique under concurrent creation. */
  async create(scopeId: string, dto: CreateDeviceDto, actor: string | null): Promise<DeviceDto> {
    await this.checkPin(scopeId, dto.gatewayId);
    const saved = await this.dataSource.transaction(async (em) => {
      // Allocating locks the account row, which gateway creation locks too: the name check cannot race.
      const tunnelIp = await this.tunnelPool.allocate(em, scopeId);
      if (await this.gateways.nameTaken(em, scopeId, dto.clientId)) {
        throw new AppError(
          'ENTRY_EXISTS',
          'Name already in use',
          `A gateway of this account is called ${dto.clientId}; gateways and devices share one namespace`,
        );
      }
      return this.repository.insert(em, scopeId, {
        clientId: dto.clientId,
        displayName: dto.displayName ?? '',
        status: dto.status ?? 'ENABLED',
        gatewayId: dto.gatewayId ?? null,
        tunnelIp,
        createdBy: actor,
      });
    });
    return toDeviceDto(saved);
  }

  async update(scopeId: string, id: string, dto: UpdateDeviceDto, actor: string | null): Promise<DeviceDto> {
    const changes: DeviceChanges = { modifiedBy: actor };
    if (dto.displayName !== undefined) changes.displayName = dto.displayName;
    if (dto.status !== undefined) changes.status = dto.status;
    if (dto.gatewayId !== undefined) {
      await this.checkPin(scopeId, dto.gatewayId);
      changes.gatewayId = dto.gatewayId;
    }
    const updated = await this.repository.update(scopeId, id, dto.optlock, changes);
    if (updated.status === 'DISABLED') {
      // A disabled device keeps no tunnel: its peer leaves the gateway and its link is cut.
      await this.devicePeers.detach(id);
    }
    if (dto.status !== undefined) {
      await this.brokerCredentials.announce({
        type: updated.status === 'DISABLED' ? 'disabled' : 'enabled',
        kind: 'device',
        id,
        account: await this.accountName(scopeId),
        clientId: updated.clientId,
      });
    }
    return toDeviceDto(updated);
  }

  async delete(scopeId: string, id: string): Promise<void> {
    const { changes, clientId } = await this.dataSource.transaction(async (em) => {
      await this.tunnelPool.lockForRelease(em, scopeId);
      // The peer's tombstone outlives the device until its gateway has removed it.
      const removed = await this.devicePeers.detachIn(em, id);
      const device = await this.repository.delete(em, scopeId, id);
      if (!device) throw AppError.notFound('Device', `No device ${id} in this scope`);
      await this.tunnelPool.release(em, scopeId, device.tunnelIp);
      return { changes: removed, clientId: device.clientId };
    });
    this.devicePeers.publish(changes);
    this.devicePeers.removed(id, 'deleted');
    await this.brokerCredentials.announce({
      type: 'deleted',
      kind: 'device',
      id,
      account: await this.accountName(scopeId),
      clientId,
    });
  }

  private async accountName(scopeId: string): Promise<string> {
    const name = await this.accounts.nameOf(scopeId);
    if (name === null) throw AppError.notFound('Account');
    return name;
  }

  /**
   * Issues or rotates the device's MQTT credentials. The password (256 random
   * bits) is returned once; only its digest is kept. The old password stops
   * working for new connections, and the current session is closed.
   */
  async issueCredentials(scopeId: string, id: string): Promise<DeviceCredentialsDto> {
    const account = await this.accountName(scopeId);
    const device = await this.findOne(scopeId, id);
    const password = generateSecret();
    const username = `${account}:${device.clientId}`;
    await this.repository.setCredentials(scopeId, id, username, digest(password));
    await this.brokerCredentials.announce({
      type: 'issued',
      kind: 'device',
      id,
      account,
      clientId: device.clientId,
      username,
      password,
    });
    return { username, password, clientId: device.clientId, account };
  }

  async listEvents(
    scopeId: string,
    deviceId: string,
    q: DeviceEventListQueryDto,
  ): Promise<ListResult<DeviceEventDto>> {
    await this.findOne(scopeId, deviceId);
    return paginate(
      { from: this.events, where: { scopeId, deviceId }, order: { receivedOn: 'DESC', id: 'DESC' } },
      q,
      toDeviceEventDto,
    );
  }
}
