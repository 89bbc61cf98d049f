import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Device } from '../devices/device.entity';

export const OPERATION_STATUSES = ['RUNNING', 'COMPLETED', 'FAILED', 'TIMEOUT'] as const;
export type OperationStatus = (typeof OPERATION_STATUSES)[number];

/** One command sent to a device: who asked what, when, and how it ended. */
@Entity('device_operation')
@Index('device_operation_device_time_idx', ['deviceId', 'startedOn'])
@Index('device_operation_running_idx', ['requesterClientId'], { where: `"status" = 'RUNNING'` })
@Index('device_operation_instance_running_idx', ['instanceId'], { where: `"status" = 'RUNNING'` })
// At most one command runs per device, whichever API instance sent it: commands never interleave.
@Index('device_operation_one_running', ['deviceId'], { unique: true, where: `"status" = 'RUNNING'` })
@Check('device_operation_status_valid', `"status" IN ('RUNNING', 'COMPLETED', 'FAILED', 'TIMEOUT')`)
export class DeviceOperation {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'scope_id', type: 'uuid' })
  scopeId: string;

  @Column({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  @Column({ name: 'request_id', type: 'varchar', length: 64, unique: true })
  requestId: string;

  @Column({ type: 'varchar', length: 16 })
  command: string;

  @Column({ type: 'varchar', length: 16 })
  status: OperationStatus;

  /** The user (or API key) that asked. */
  @Column({ name: 'requested_by', type: 'uuid', nullable: true })
  requestedBy: string | null;

  /** The API instance that sent it (its MQTT requester.client.id). */
  @Column({ name: 'requester_client_id', type: 'varchar', length: 64 })
  requesterClientId: string;

  /**
   * The API process that runs it (its lease in api_instance): a survivor closes the RUNNING
   * operations of an instance whose lease expired. Null on rows older than the lease.
   */
  @Column({ name: 'instance_id', type: 'uuid', nullable: true })
  instanceId: string | null;

  @Column({ name: 'started_on', type: 'timestamptz', default: () => 'now()' })
  startedOn: Date;

  @Column({ name: 'ended_on', type: 'timestamptz', nullable: true })
  endedOn: Date | null;

  @Column({ name: 'duration_ms', type: 'integer', nullable: true })
  durationMs: number | null;

  @Column({ name: 'response_code', type: 'integer', nullable: true })
  responseCode: number | null;

  @Column({ name: 'error_message', type: 'varchar', length: 1024, nullable: true })
  errorMessage: string | null;

  @ManyToOne(() => Device, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'device_operation_device_fk' })
  device?: Device;
}
