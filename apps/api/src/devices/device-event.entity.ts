import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Device } from './device.entity';

/** Something that happened to a device: lifecycle (BIRTH, DC, LWT) and VPN status changes. */
@Entity('device_event')
@Index('device_event_device_time_idx', ['deviceId', 'receivedOn'])
// The newest event of a scope, for the fleet status ETag (migrations/1795600100000-FleetStatus.ts).
@Index('device_event_scope_id_idx', ['scopeId', 'id'])
export class DeviceEvent {
  @PrimaryGeneratedColumn('increment', { type: 'bigint' })
  id: string;

  @Column({ name: 'scope_id', type: 'uuid' })
  scopeId: string;

  @Column({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  @Column({ type: 'varchar', length: 32 })
  type: string;

  @Column({ name: 'received_on', type: 'timestamptz', default: () => 'now()' })
  receivedOn: Date;

  /** The device's own timestamp from the payload, when it sent one. */
  @Column({ name: 'sent_on', type: 'timestamptz', nullable: true })
  sentOn: Date | null;

  @Column({ type: 'jsonb' })
  details: Record<string, unknown>;

  @ManyToOne(() => Device, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'device_event_device_fk' })
  device?: Device;
}
