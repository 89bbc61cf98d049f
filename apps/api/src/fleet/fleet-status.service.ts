import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { VPN_STATUSES } from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import type { RequestScope } from '../auth/principal';
import { CONNECTION_STATUSES } from '../devices/device.entity';
import { queryCursor } from '../common/list-cursor';
import type { FleetScopeQueryDto, FleetStatusQueryDto, FleetSummaryDto } from './dto/fleet-status.dto';
import { FleetStatusRepository, type FleetScope } from './fleet-status.repository';

/** The answer to a conditional list read: the page, or only its validator when the caller has it. */
export type FleetStatusPage =
  | { etag: string; notModified: true }
  /** `json`: the list body (FleetStatusListDto) as JSON text, built by the page statement. */
  | { etag: string; notModified: false; json: string };

const sorted = (values: string[] | undefined): string[] | null =>
  values?.length ? [...new Set(values)].sort() : null;

/** True when an If-None-Match header names `etag` (weak comparison, RFC 9110 §13.1.2) or is `*`. */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  const mine = opaque(etag);
  return header.split(',').some((tag) => tag.trim() === '*' || opaque(tag) === mine);
}

/**
 * Fleet-wide VPN status for dashboards: a page of per-device status items (the single-device
 * answer, plus who the device is), a summary of counts, and a weak ETag computed from a few
 * index probes so a dashboard that polls an unchanged fleet gets 304 without the page being read.
 */
@Injectable()
export class FleetStatusService {
  constructor(
    private readonly repo: FleetStatusRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async list(scope: RequestScope, q: FleetStatusQueryDto, ifNoneMatch?: string): Promise<FleetStatusPage> {
    const fleet: FleetScope = { id: scope.id, path: scope.path, recursive: q.recursive };
    const etag = await this.etag(fleet, q);
    if (ifNoneMatchHits(ifNoneMatch, etag)) return { etag, notModified: true };
    const filters = {
      connected: q.connected,
      deviceConnection: q.deviceConnection,
      status: q.status,
      statusCode: q.statusCode,
    };
    const json = await this.repo.page(
      fleet,
      filters,
      { offset: q.offset, limit: q.limit, withTotal: q.askTotalCount, cursor: queryCursor(q) },
      this.config.vpnHandshakeFreshSeconds,
    );
    return { etag, notModified: false, json };
  }

  async summary(scope: RequestScope, q: FleetScopeQueryDto): Promise<FleetSummaryDto> {
    const rows = await this.repo.counts(
      { id: scope.id, path: scope.path, recursive: q.recursive },
      this.config.vpnHandshakeFreshSeconds,
    );
    const zeros = (keys: readonly string[]) => Object.fromEntries(keys.map((k) => [k, 0]));
    const deviceConnection = zeros(CONNECTION_STATUSES);
    const byStatus = zeros(VPN_STATUSES);
    const byStatusCode: Record<string, number> = {};
    let devices = 0;
    let connected = 0;
    for (const r of rows) {
      devices += r.n;
      if (r.connected) connected += r.n;
      deviceConnection[r.connection_status] = (deviceConnection[r.connection_status] ?? 0) + r.n;
      byStatus[r.status] = (byStatus[r.status] ?? 0) + r.n;
      byStatusCode[r.status_code] = (byStatusCode[r.status_code] ?? 0) + r.n;
    }
    return {
      devices,
      deviceConnection: deviceConnection as unknown as FleetSummaryDto['deviceConnection'],
      vpn: {
        connected,
        notConnected: devices - connected,
        byStatus: byStatus as unknown as FleetSummaryDto['vpn']['byStatus'],
        byStatusCode: Object.fromEntries(Object.entries(byStatusCode).sort(([a], [b]) => a.localeCompare(b))),
      },
    };
  }

  /**
   * W/"…": a digest of the normalised query (scope, subtree, filters, page) and the scope's version
   * (FleetStatusRepository.version). Any change of a device's status, link, name, existence or
   * tunnel changes it; traffic counters and a repeated identical report do not.
   */
  private async etag(fleet: FleetScope, q: FleetStatusQueryDto): Promise<string> {
    const version = await this.repo.version(fleet, this.config.vpnHandshakeFreshSeconds);
    const query = {
      scope: fleet.id,
      recursive: fleet.recursive,
      connected: q.connected ?? null,
      deviceConnection: sorted(q.deviceConnection),
      status: sorted(q.status),
      statusCode: sorted(q.statusCode),
      offset: q.offset,
      cursor: q.cursor ?? null,
      limit: q.limit,
      askTotalCount: q.askTotalCount,
      fresh: this.config.vpnHandshakeFreshSeconds,
    };
    const digest = createHash('sha256')
      .update(JSON.stringify({ query, version }))
      .digest('base64url')
      .slice(0, 27);
    return `W/"${digest}"`;
  }
}
