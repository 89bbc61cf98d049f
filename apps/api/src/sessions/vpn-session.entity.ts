import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { Account } from '../accounts/account.entity';
import { Device } from '../devices/device.entity';
import { Gateway } from '../gateways/gateway.entity';

export const SESSION_KINDS = ['device', 'site'] as const;
export type SessionKind = (typeof SESSION_KINDS)[number];

export const END_REASONS = [
  'closed',
  'expired',
  'device_disconnected',
  'device_deleted',
  'device_unreachable',
  'principal_revoked',
  'replaced',
  'gateway_error',
] as const;
export type EndReason = (typeof END_REASONS)[number];

/**
 * An engineer's VPN session: a computer (its WireGuard key, an address from the client pool) on a
 * gateway, allowed to reach one device (`device`) or the devices of some accounts (`site`, the
 * FendVPN flow). The row is the audit trail: who, to what, when, how long, why it ended, bytes.
 * Rows are never deleted; a session is active while `endedOn` is null.
 */
@Entity('vpn_session')
@Index('vpn_session_tunnel_ip_active', ['tunnelIp'], { unique: true, where: '"ended_on" IS NULL' })
@Index('vpn_session_scope_time_idx', ['scopeId', 'startedOn'])
@Index('vpn_session_device_active_idx', ['coversDeviceId'], { where: '"ended_on" IS NULL' })
@Check('vpn_session_kind_valid', `"kind" IN ('device', 'site')`)
@Check('vpn_session_device_has_device', `"kind" <> 'device' OR "covers_device_id" IS NOT NULL`)
export class VpnSession {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** The account the session belongs to: the device's (device sessions) or the caller's (site). */
  @Column({ name: 'scope_id', type: 'uuid' })
  scopeId: string;

  @Column({ type: 'varchar', length: 8 })
  kind: SessionKind;

  /** The device a device session reaches; kept after the device is deleted as `coversDeviceId`. */
  @Column({ name: 'device_id', type: 'uuid', nullable: true })
  deviceId: string | null;

  @Column({ name: 'covers_device_id', type: 'uuid', nullable: true })
  coversDeviceId: string | null;

  /** The accounts whose devices a site session reaches. */
  @Column({ name: 'covers_account_ids', type: 'uuid', array: true, nullable: true })
  coversAccountIds: string[] | null;

  @Column({ name: 'gateway_id', type: 'uuid', nullable: true })
  gatewayId: string | null;

  /** Who opened it: a user, or an API key acting on its own (no foreign key: the audit outlives them). */
  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId: string | null;

  @Column({ name: 'api_key_id', type: 'uuid', nullable: true })
  apiKeyId: string | null;

  @Column({ name: 'public_key', type: 'varchar', length: 64 })
  publicKey: string;

  @Column({ name: 'tunnel_ip', type: 'inet' })
  tunnelIp: string;

  @Column({ name: 'ping_token_digest', type: 'bytea' })
  pingTokenDigest: Buffer;

  @Column({ name: 'ping_interval_seconds', type: 'integer' })
  pingIntervalSeconds: number;

  /** FendVPN's identifiers of the client installation and its session, for ping and disconnect. */
  @Column({ name: 'installation_id', type: 'varchar', length: 128, nullable: true })
  installationId: string | null;

  @Column({ name: 'client_session_id', type: 'varchar', length: 128, nullable: true })
  clientSessionId: string | null;

  @Column({ name: 'started_on', type: 'timestamptz', default: () => 'now()' })
  startedOn: Date;

  /** Last proof of life: a ping, or a handshake the gateway reported. */
  @Column({ name: 'last_seen_on', type: 'timestamptz', default: () => 'now()' })
  lastSeenOn: Date;

  @Column({ name: 'ended_on', type: 'timestamptz', nullable: true })
  endedOn: Date | null;

  @Column({ name: 'end_reason', type: 'varchar', length: 32, nullable: true })
  endReason: EndReason | null;

  @Column({ name: 'rx_bytes', type: 'bigint', default: 0 })
  rxBytes: string;

  @Column({ name: 'tx_bytes', type: 'bigint', default: 0 })
  txBytes: string;

  @ManyToOne(() => Account, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'scope_id', foreignKeyConstraintName: 'vpn_session_account_fk' })
  account?: Account;

  @ManyToOne(() => Device, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'device_id', foreignKeyConstraintName: 'vpn_session_device_fk' })
  device?: Device;

  @ManyToOne(() => Gateway, { onDelete: 'SET NULL' })
  @JoinColumn({ name: 'gateway_id', foreignKeyConstraintName: 'vpn_session_gateway_fk' })
  gateway?: Gateway;
}
