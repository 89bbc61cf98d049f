import { Injectable } from '@nestjs/common';
import { AppError } from '../common/app-error';
import { toListResult, type ListResult } from '../common/list';
import { digest, generateSecret } from '../common/secrets';
import { BrokerCredentials } from '../mqtt/broker-credentials';
import {
  toGatewayDto,
  type CreateGatewayDto,
  type GatewayCredentialsDto,
  type GatewayDto,
  type GatewayListQueryDto,
  type UpdateGatewayDto,
} from './dto/gateway.dto';
import { GatewayRepository } from './gateway.repository';
import type { Gateway } from './gateway.entity';

/** The gateway registry: CRUD and MQTT credentials, scope first. */
@Injectable()
export class GatewaysService {
  constructor(
    private readonly gateways: GatewayRepository,
    private readonly brokerCredentials: BrokerCredentials,
  ) {}

  private async findOne(scopeId: string, id: string): Promise<Gateway> {
    const gateway = await this.gateways.findOne(scopeId, id);
    if (!gateway) throw AppError.notFound('Gateway', `No gateway ${id} in this scope`);
    return gateway;
  }

  private async dto(g: Gateway): Promise<GatewayDto> {
    return toGatewayDto(g, (await this.gateways.livePeerCounts([g.id])).get(g.id) ?? 0);
  }

  async get(scopeId: string, id: string): Promise<GatewayDto> {
    return this.dto(await this.findOne(scopeId, id));
  }

  async list(scopeId: string, q: GatewayListQueryDto): Promise<ListResult<GatewayDto>> {
    const { rows, total } = await this.gateways.list(scopeId, q, {
      name: q.name,
      connectionStatus: q.connection,
    });
    const counts = await this.gateways.livePeerCounts(rows.map((r) => r.id));
    return toListResult(rows, q, (g) => toGatewayDto(g, counts.get(g.id) ?? 0), total);
  }

  async create(scopeId: string, body: CreateGatewayDto, actor: string | null): Promise<GatewayDto> {
    const created = await this.gateways.create(
      scopeId,
      { name: body.name, endpoint: body.endpoint, description: body.description ?? '' },
      actor,
    );
    return toGatewayDto(created, 0);
  }

  async update(
    scopeId: string,
    id: string,
    body: UpdateGatewayDto,
    actor: string | null,
  ): Promise<GatewayDto> {
    const changes: Partial<Pick<Gateway, 'endpoint' | 'description' | 'modifiedBy'>> = { modifiedBy: actor };
    if (body.endpoint !== undefined) changes.endpoint = body.endpoint;
    if (body.description !== undefined) changes.description = body.description;
    return this.dto(await this.gateways.update(scopeId, id, body.optlock, changes));
  }

  async delete(scopeId: string, id: string): Promise<void> {
    const gateway = await this.findOne(scopeId, id);
    await this.gateways.delete(scopeId, id);
    await this.brokerCredentials.announce({
      type: 'deleted',
      kind: 'gateway',
      id,
      account: await this.gateways.accountName(scopeId),
      clientId: gateway.name,
    });
  }

  /**
   * Issues or rotates the gateway's MQTT credentials (same scheme as a device's: 256 random bits,
   * shown once, stored as a digest). The current session is closed.
   */
  async issueCredentials(scopeId: string, id: string): Promise<GatewayCredentialsDto> {
    const gateway = await this.findOne(scopeId, id);
    const account = await this.gateways.accountName(scopeId);
    const password = generateSecret();
    const username = `${account}:${gateway.name}`;
    await this.gateways.setCredentials(scopeId, id, username, digest(password));
    await this.brokerCredentials.announce({
      type: 'issued',
      kind: 'gateway',
      id,
      account,
      clientId: gateway.name,
      username,
      password,
    });
    return { username, password, clientId: gateway.name, account };
  }
}
