import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
} from 'typeorm';
import { Device } from '../devices/device.entity';
import { Gateway } from './gateway.entity';
import { VpnSession } from '../sessions/vpn-session.entity';

export const PEER_KINDS = ['device', 'client'] as const;
export type PeerKind = (typeof PEER_KINDS)[number];

/**
 * The desired state of a gateway: one row per WireGuard peer it must hold (a device, or an
 * engineer's client session). Every change bumps the gateway's desiredSerial and stamps the row
 * with it; a removed peer stays as a tombstone (`removed`) until the gateway has acknowledged a
 * serial at or above it, so change sets can say what to remove. A client peer may talk to the
 * device peers its session covers: one device (`coversDeviceId`) or the devices of some accounts
 * (`coversAccountIds`, site access).
 */
@Entity('gateway_peer')
@Index('gateway_peer_key_unique', ['gatewayId', 'publicKey'], { unique: true, where: 'NOT "removed"' })
@Index('gateway_peer_device_unique', ['deviceId'], { unique: true, where: 'NOT "removed"' })
@Index('gateway_peer_tunnel_ip_unique', ['gatewayId', 'tunnelIp'], { unique: true, where: 'NOT "removed"' })
@Index('gateway_peer_serial_idx', ['gatewayId', 'serial'])
// The fleet status ETag sums a scope's device peers (migrations/1795600100000-FleetStatus.ts).
@Index('gateway_peer_device_scope_idx', ['scopeId'], { where: `"kind" = 'device'` })
// The allow lists are computed per peer from the live peers of its gateway, by kind and account.
@Index('gateway_peer_live_kind_idx', ['gatewayId', 'kind', 'scopeId'], { where: 'NOT "removed"' })
@Check('gateway_peer_kind_valid', `"kind" IN ('device', 'client')`)
@Check('gateway_peer_device_has_device', `"kind" <> 'device' OR "removed" OR "device_id" IS NOT NULL`)
export class GatewayPeer {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'gateway_id', type: 'uuid' })
  gatewayId: string;

  /** The account the peer belongs to: the device's, or the session's. */
  @Column({ name: 'scope_id', type: 'uuid' })
  scopeId: string;

  @Column({ type: 'varchar', length: 8 })
  kind: PeerKind;

  @Column({ name: 'public_key', type: 'varchar', length: 64 })
  publicKey: string;

  /** The peer's tunnel address (a host address; its only AllowedIP on the gateway). */
  @Column({ name: 'tunnel_ip', type: 'inet' })
  tunnelIp: string;

  @Column({ name: 'device_id', type: 'uuid', nullable: true })
  deviceId: string | null;

  @Column({ name: 'session_id', type: 'uuid', nullable: true })
  sessionId: string | null;

  @Column({ name: 'covers_device_id', type: 'uuid', nullable: true })
  coversDeviceId: string | null;

  @Column({ name: 'covers_account_ids', type: 'uuid', array: true, nullable: true })
  coversAccountIds: string[] | null;

  @Column({ type: 'bigint' })
  serial: string;

  @Column({ type: 'boolean', default: false })
  removed: boolean;

  @CreateDateColumn({ name: 'created_on', type: 'timestamptz' })
  createdOn: Date;

  @Column({ name: 'last_handshake_on', type: 'timestamptz', nullable: true })
  lastHandshakeOn: Date | null;

  @Column({ name: 'rx_bytes', type: 'bigint', default: 0 })
  rxBytes: string;

  @Column({ name: 'tx_bytes', type: 'bigint', default: 0 })
  txBytes: string;

  @ManyToOne(() => Gateway, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'gateway_id', foreignKeyConstraintName: 'gateway_peer_gateway_fk' })
  gateway?: Gateway;

  @ManyToOne(() => VpnSession, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'session_id', foreignKeyConstraintName: 'gateway_peer_session_fk' })
  session?: VpnSession;

  /** A deleted device's tombstone outlives it until the gateway has removed the peer. */
  @ManyToOne(() => Device, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'gateway_peer_device_fk' })
  device?: Device;
}
