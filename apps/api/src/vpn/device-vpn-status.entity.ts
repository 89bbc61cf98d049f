import { Column, Entity, JoinColumn, OneToOne, PrimaryColumn } from 'typeorm';
import { Device } from '../devices/device.entity';

/**
 * The last VPN status a device reported, one row per device. Kept apart from
 * `device` so thousands of reports per second touch a small row and never the
 * device's optlock. (boot_id, seq) orders reports: see VpnStatusStore.
 */
@Entity('device_vpn_status')
export class DeviceVpnStatus {
  @PrimaryColumn({ name: 'device_id', type: 'uuid' })
  deviceId: string;

  @Column({ name: 'scope_id', type: 'uuid' })
  scopeId: string;

  @Column({ type: 'boolean' })
  connected: boolean;

  @Column({ name: 'ip_address', type: 'varchar', length: 45 })
  ipAddress: string;

  @Column({ type: 'varchar', length: 16 })
  status: string;

  @Column({ name: 'status_code', type: 'varchar', length: 3 })
  statusCode: string;

  @Column({ name: 'boot_id', type: 'varchar', length: 64 })
  bootId: string;

  @Column({ type: 'bigint' })
  seq: string;

  @Column({ name: 'reported_on', type: 'timestamptz' })
  reportedOn: Date;

  @OneToOne(() => Device, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'device_vpn_status_device_fk' })
  device?: Device;
}
