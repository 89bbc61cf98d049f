import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** One count: `metric` names the gauge, `a` and `b` are its label values ('' when unused). */
export interface FleetCount {
  metric: 'devices' | 'tunnels' | 'gateways' | 'peers' | 'sessions' | 'deliveries';
  a: string;
  b: string;
  value: number;
}

/**
 * The fleet as the database holds it, counted when Prometheus scrapes, in one statement: every
 * count is a GROUP BY over a table (no per-device query), fleet-wide (no account labels). A few
 * milliseconds per scrape at 100,000 devices. A state without rows has no count here; FleetGauges
 * reports it as 0, so a series never disappears because its count dropped to nothing.
 */
const FLEET_SQL = `
  SELECT 'devices' AS metric, connection_status AS a, '' AS b, count(*)::int AS value
    FROM device GROUP BY connection_status
  UNION ALL
  SELECT 'tunnels', status, '', count(*)::int FROM device_vpn_status GROUP BY status
  UNION ALL
  SELECT 'gateways', connection_status, '', count(*)::int FROM gateway GROUP BY connection_status
  UNION ALL
  SELECT 'peers', p.kind, (p.serial <= g.applied_serial)::text, count(*)::int
    FROM gateway_peer p JOIN gateway g ON g.id = p.gateway_id
   WHERE NOT p.removed
   GROUP BY p.kind, (p.serial <= g.applied_serial)
  UNION ALL
  SELECT 'sessions', '', '', count(*)::int FROM vpn_session WHERE ended_on IS NULL
  UNION ALL
  SELECT 'deliveries', status, '', count(*)::int FROM webhook_delivery GROUP BY status`;

/** The fleet counts behind the Prometheus gauges (FleetGauges turns them into series). */
@Injectable()
export class FleetCountsRepository {
  constructor(private readonly dataSource: DataSource) {}

  read(): Promise<FleetCount[]> {
    return this.dataSource.query(FLEET_SQL);
  }
}
