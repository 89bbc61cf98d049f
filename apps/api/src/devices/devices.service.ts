import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Brackets, DataSource, Repository } from 'typeorm';
import { AppError } from '../common/app-error';
import { isUniqueViolation } from '../common/db-errors';
import { toListResult, type ListResult } from '../common/list';
import { updateWithOptlock } from '../common/optlock';
import { digest, generateSecret } from '../auth/secrets';
import { EmbeddedBroker } from '../mqtt/embedded-broker';
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
import { TunnelAddressPool } from './tunnel-address.pool';

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The device registry. Every query takes the scope first: another tenant's device is simply not found. */
@Injectable()
export class DevicesService {
  constructor(
    @InjectRepository(Device) private readonly devices: Repository<Device>,
    @InjectRepository(DeviceEvent) private readonly events: Repository<DeviceEvent>,
    private readonly dataSource: DataSource,
    private readonly tunnelPool: TunnelAddressPool,
    private readonly broker: EmbeddedBroker,
  ) {}

  async findOne(scopeId: string, id: string): Promise<Device> {
    const device = await this.devices.findOne({ where: { scopeId, id } });
    if (!device) throw AppError.notFound('Device', `No device ${id} in this scope`);
    return device;
  }

  async get(scopeId: string, id: string): Promise<DeviceDto> {
    return toDeviceDto(await this.findOne(scopeId, id));
  }

  async list(scopeId: string, q: DeviceListQueryDto): Promise<ListResult<DeviceDto>> {
    const qb = this.devices.createQueryBuilder('d').where('d.scope_id = :scopeId', { scopeId });
    if (q.clientId) qb.andWhere('d.client_id = :clientId', { clientId: q.clientId });
    if (q.status) qb.andWhere('d.status = :status', { status: q.status });
    if (q.connectionStatus) qb.andWhere('d.connection_status = :cs', { cs: q.connectionStatus });
    if (q.matchTerm) {
      const term = `%${likeEscape(q.matchTerm)}%`;
      qb.andWhere(
        new Brackets((w) =>
          w
            .where('d.client_id ILIKE :term', { term })
            .orWhere('d.display_name ILIKE :term', { term })
            .orWhere('d.serial_number ILIKE :term', { term }),
        ),
      );
    }
    const [rows, total] = await Promise.all([
      qb
        .clone()
        .orderBy('d.client_id', 'ASC')
        .offset(q.offset)
        .limit(q.limit + 1)
        .getMany(),
      q.askTotalCount ? qb.getCount() : Promise.resolve(undefined),
    ]);
    return toListResult(rows, q, toDeviceDto, total);
  }

  /** Creates the device with a tunnel address that stays unique under concurrent creation. */
  async create(scopeId: string, dto: CreateDeviceDto, actor: string | null): Promise<DeviceDto> {
    try {
      const saved = await this.dataSource.transaction(async (em) => {
        const tunnelIp = await this.tunnelPool.allocate(em, scopeId);
        const repo = em.getRepository(Device);
        return repo.save(
          repo.create({
            scopeId,
            clientId: dto.clientId,
            displayName: dto.displayName ?? '',
            status: dto.status ?? 'ENABLED',
            tunnelIp,
            createdBy: actor,
            modifiedBy: actor,
          }),
        );
      });
      return toDeviceDto(saved);
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new AppError(
          'ENTRY_EXISTS',
          'Device already exists',
          `A device with clientId ${dto.clientId} exists`,
        );
      }
      throw err;
    }
  }

  async update(scopeId: string, id: string, dto: UpdateDeviceDto, actor: string | null): Promise<DeviceDto> {
    const changes: Partial<Device> = { modifiedBy: actor };
    if (dto.displayName !== undefined) changes.displayName = dto.displayName;
    if (dto.status !== undefined) changes.status = dto.status;
    const updated = await updateWithOptlock(this.devices, { scopeId, id }, dto.optlock, changes, 'Device');
    if (updated.status === 'DISABLED') this.broker.disconnectDevice(id);
    return toDeviceDto(updated);
  }

  async delete(scopeId: string, id: string): Promise<void> {
    const result = await this.devices.delete({ scopeId, id });
    if (!result.affected) throw AppError.notFound('Device', `No device ${id} in this scope`);
    this.broker.disconnectDevice(id);
  }

  /**
   * Issues or rotates the device's MQTT credentials. The password (256 random
   * bits) is returned once; only its digest is kept. The old password stops
   * working for new connections, and the current session is closed.
   */
  async issueCredentials(scopeId: string, id: string): Promise<DeviceCredentialsDto> {
    const rows: Array<{ name: string }> = await this.dataSource.query(
      'SELECT name FROM account WHERE id = $1',
      [scopeId],
    );
    const device = await this.findOne(scopeId, id);
    const password = generateSecret();
    const username = `${rows[0].name}:${device.clientId}`;
    await this.devices.update(
      { scopeId, id },
      { mqttUsername: username, mqttPasswordDigest: digest(password), credentialsIssuedOn: new Date() },
    );
    this.broker.disconnectDevice(id);
    return { username, password, clientId: device.clientId, account: rows[0].name };
  }

  async listEvents(
    scopeId: string,
    deviceId: string,
    q: DeviceEventListQueryDto,
  ): Promise<ListResult<DeviceEventDto>> {
    await this.findOne(scopeId, deviceId);
    const where = { scopeId, deviceId };
    const [rows, total] = await Promise.all([
      this.events.find({
        where,
        order: { receivedOn: 'DESC', id: 'DESC' },
        skip: q.offset,
        take: q.limit + 1,
      }),
      q.askTotalCount ? this.events.count({ where }) : Promise.resolve(undefined),
    ]);
    return toListResult(rows, q, toDeviceEventDto, total);
  }
}
