import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, type EntityManager, Repository } from 'typeorm';
import type { VpnCommand } from '@app/protocol';
import { DeviceOperation, type OperationStatus } from './device-operation.entity';
import { isTransientDbError, retryTransient } from '../common/transient-retry';
import { AppMetrics } from '../metrics/app-metrics';
import { preparedQuery } from '../database/prepared-query';
import {
  APPLY_STATUS_CTES,
  applyParams,
  STORED_STATUS_COLUMNS,
  toStored,
  type StoredStatusRow,
  type StoredVpnStatus,
  type VpnStatusUpdate,
} from './vpn-status.store';

/** What a command needs to know about its device, read in the same round trip that records it. */
export interface CommandTarget {
  deviceId: string;
  scopeId: string;
  clientId: string;
  tunnelIp: string;
  status: string;
  connectionStatus: string;
  accountName: string;
  vpnSubnet: string;
  /** The WireGuard key the agent announced; null for a keyless device (no gateway peer). */
  publicKey: string | null;
}

export type StartResult =
  | { started: true; operationId: string; target: CommandTarget }
  | { started: false; target: CommandTarget | null; busy: boolean };

interface StartRow {
  id: string;
  scope_id: string;
  client_id: string;
  tunnel_ip: string;
  status: string;
  connection_status: string;
  account_name: string;
  vpn_subnet: string;
  vpn_public_key: string | null;
  operation_id: string | null;
}

const MAX_ERROR_MESSAGE = 1024;
const UNSTORABLE_MESSAGE = '(the device message could not be stored)';

/** $1–$5: the operation id, its final status, response code, error message and duration. */
const FINISH_SQL = `WITH u AS (
     UPDATE device_operation
        SET status = $2, response_code = $3, error_message = $4, ended_on = now(), duration_ms = $5
      WHERE id = $1
      RETURNING command)
   SELECT command FROM u`;

/** The status report ($1–$9, as in the status store) and then the outcome ($10–$14, as in FINISH_SQL). */
const FINISH_WITH_STATUS_SQL = `WITH ${APPLY_STATUS_CTES},
   fin AS (
     UPDATE device_operation
        SET status = $11, response_code = $12, error_message = $13, ended_on = now(), duration_ms = $14
      WHERE id = $10
      RETURNING command)
   SELECT fin.command, ${STORED_STATUS_COLUMNS}
     FROM (SELECT 1) one LEFT JOIN fin ON true LEFT JOIN up ON true`;

type FinishRow = { command: string | null } & Partial<StoredStatusRow>;

/** The outcome written on the RUNNING operations of an instance that is gone (docs/scale-out.md). */
export const INTERRUPTED_RESTART = 'Interrupted: the API instance restarted';
export const INTERRUPTED_STOPPED = 'Interrupted: the API instance stopped';
export const INTERRUPTED_LEASE_EXPIRED = 'Interrupted: its API instance stopped renewing its lease';

/**
 * Every SQL statement about the operation rows of VPN commands. Reads that serve a request take
 * the scope first: another tenant's (or another device's) operation is simply not found. Starting a command reads the device and its account and
 * inserts the RUNNING row in one statement, and only when the device is enabled and connected:
 * a command is on the hot path of fleet automation, so it costs two round trips in all.
 * The RUNNING row commits asynchronously (no WAL flush wait): the outcome's UPDATE commits
 * synchronously and flushes it too, and a database crash in between fails the command anyway
 * (docs/decisions.md).
 */
@Injectable()
export class OperationsRepository {
  private readonly logger = new Logger('Operations');
  constructor(
    @InjectRepository(DeviceOperation) private readonly operations: Repository<DeviceOperation>,
    private readonly dataSource: DataSource,
    private readonly metrics: AppMetrics,
  ) {}

  findOne(scopeId: string, deviceId: string, id: string): Promise<DeviceOperation | null> {
    return this.operations.findOneBy({ id, deviceId, scopeId });
  }

  /**
   * Fails the operations a previous run of this API instance (its MQTT client id) left RUNNING:
   * their waits are gone. Returns how many were closed.
   */
  async closeInterrupted(requesterClientId: string): Promise<number> {
    const result = await this.operations
      .createQueryBuilder()
      .update()
      .set({
        status: 'FAILED',
        endedOn: () => 'now()',
        errorMessage: INTERRUPTED_RESTART,
      })
      .where('status = :running AND requester_client_id = :me', {
        running: 'RUNNING',
        me: requesterClientId,
      })
      .execute();
    return result.affected ?? 0;
  }

  /**
   * Fails the RUNNING operations of the given API instances (their lease ids): a stopping
   * instance's own that did not finish, or those of instances whose lease expired, closed by a
   * reaper inside its transaction (`manager`). Returns how many were closed.
   */
  async closeOfInstances(
    instanceIds: string[],
    errorMessage: string,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<number> {
    const rows: unknown[] = await manager.query(
      `WITH u AS (
         UPDATE device_operation SET status = 'FAILED', ended_on = now(), error_message = $2
          WHERE status = 'RUNNING' AND instance_id = ANY($1::uuid[])
          RETURNING id)
       SELECT id FROM u`,
      [instanceIds, errorMessage],
    );
    return rows.length;
  }

  async start(cmd: {
    scopeId: string;
    deviceId: string;
    command: VpnCommand;
    requestId: string;
    requestedBy: string | null;
    requesterClientId: string;
    /** The lease id of the API instance that runs it. */
    instanceId: string;
  }): Promise<StartResult> {
    const rows = await preparedQuery<StartRow>(
      this.dataSource,
      'operation_start',
      `WITH dev AS (
         SELECT d.id, d.scope_id, d.client_id, host(d.tunnel_ip) AS tunnel_ip, d.status, d.connection_status,
                d.vpn_public_key, a.name AS account_name, a.vpn_subnet::text AS vpn_subnet
           FROM device d JOIN account a ON a.id = d.scope_id
          WHERE d.id = $1 AND d.scope_id = $2),
       async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
       op AS (
         INSERT INTO device_operation (scope_id, device_id, request_id, command, status, requested_by, requester_client_id, instance_id)
         SELECT dev.scope_id, dev.id, $3, $4, 'RUNNING', $5, $6, $7 FROM dev, async_commit
          WHERE dev.status = 'ENABLED' AND dev.connection_status = 'CONNECTED'
         -- One RUNNING operation per device, whichever instance asks (device_operation_one_running).
         ON CONFLICT (device_id) WHERE status = 'RUNNING' DO NOTHING
         RETURNING id)
       SELECT dev.*, op.id AS operation_id FROM dev LEFT JOIN op ON true`,
      [
        cmd.deviceId,
        cmd.scopeId,
        cmd.requestId,
        cmd.command,
        cmd.requestedBy,
        cmd.requesterClientId,
        cmd.instanceId,
      ],
    );
    const row = rows[0];
    if (!row) return { started: false, target: null, busy: false };
    const target: CommandTarget = {
      deviceId: row.id,
      scopeId: row.scope_id,
      clientId: row.client_id,
      tunnelIp: row.tunnel_ip,
      status: row.status,
      connectionStatus: row.connection_status,
      accountName: row.account_name,
      vpnSubnet: row.vpn_subnet,
      publicKey: row.vpn_public_key,
    };
    if (row.operation_id) return { started: true, operationId: row.operation_id, target };
    return {
      started: false,
      target,
      busy: row.status === 'ENABLED' && row.connection_status === 'CONNECTED',
    };
  }

  /**
   * Closes the device's RUNNING operation if it is older than any command may run (its API
   * instance died without closing it); true when one was closed.
   */
  async closeAbandoned(deviceId: string, olderThanMs: number): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      `WITH u AS (
         UPDATE device_operation
            SET status = 'FAILED', ended_on = now(), error_message = 'Abandoned: its API instance stopped answering'
          WHERE device_id = $1 AND status = 'RUNNING' AND started_on < now() - make_interval(secs => $2 / 1000.0)
          RETURNING id)
       SELECT * FROM u`,
      [deviceId, olderThanMs],
    );
    return rows.length > 0;
  }

  /**
   * Writes the command's outcome on its operation and, when the device's reply carried its status,
   * applies that status in the same statement (one round trip, one commit; the ordering rule of the
   * status store holds). Returns the status stored, or null when there was none or it was stale.
   */
  async finish(
    operationId: string,
    outcome: {
      status: OperationStatus;
      responseCode: number | null;
      errorMessage: string | null;
      durationMs: number;
    },
    reported?: VpnStatusUpdate,
  ): Promise<StoredVpnStatus | null> {
    const outcomeParams = (message: string | null) => [
      operationId,
      outcome.status,
      outcome.responseCode,
      message,
      outcome.durationMs,
    ];
    // The command's verb comes back with the update, for the metrics (vpn_commands_total).
    const write = (message: string | null, status: VpnStatusUpdate | undefined): Promise<FinishRow[]> =>
      retryTransient(() =>
        status
          ? preparedQuery<FinishRow>(
              this.dataSource,
              'operation_finish_with_status',
              FINISH_WITH_STATUS_SQL,
              [...applyParams([status]), ...outcomeParams(message)],
            )
          : preparedQuery<FinishRow>(this.dataSource, 'operation_finish', FINISH_SQL, outcomeParams(message)),
      );
    // A device may answer with any message; the column keeps the first 1024 characters.
    const message = outcome.errorMessage?.slice(0, MAX_ERROR_MESSAGE) ?? null;
    // Whatever the device wrote must never leave its operation RUNNING: when the database refuses
    // the write, it is tried again without the device's message, then without its status report.
    const attempts: Array<[string | null, VpnStatusUpdate | undefined]> = [[message, reported]];
    if (message !== null) attempts.push([UNSTORABLE_MESSAGE, reported]);
    if (reported) attempts.push([message === null ? null : UNSTORABLE_MESSAGE, undefined]);
    let rows: FinishRow[] = [];
    for (let i = 0; i < attempts.length; i++) {
      try {
        rows = await write(...attempts[i]);
        break;
      } catch (err) {
        if (i === attempts.length - 1 || isTransientDbError(err)) throw err;
        this.logger.warn({ err, operationId }, 'the database refused the outcome as the device sent it');
      }
    }
    const row = rows[0];
    if (row?.command) this.metrics.commandEnded(row.command, outcome.status, outcome.durationMs);
    return row?.device_id ? toStored(row as StoredStatusRow) : null;
  }
}
