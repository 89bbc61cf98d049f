import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { toListResult, type ListResult } from '../common/list';
import { digest, digestEquals, generateSecret } from '../common/secrets';
import type { Principal } from '../auth/principal';
import { DevicePeers, type DetachReason } from '../gateways/device-peers.service';
import type { PeerChange } from '../gateways/gateway-peer.repository';
import { GatewaySyncService, unavailable } from '../gateways/gateway-sync.service';
import { GatewayRepository, type UsableGateway } from '../gateways/gateway.repository';
import { toVpnStatusDto } from '../vpn/vpn-status.view';
import type { LocationDto, SessionCreatedDto, SessionDto, SessionListQueryDto } from './dto/session.dto';
import type { EndReason, VpnSession } from './vpn-session.entity';
import { VpnSessionRepository } from './vpn-session.repository';

/** How long opening a session waits for the gateway to hold the engineer's peer. */
const GATEWAY_CONFIRM_MS = 15_000;

const END_REASON_OF: Readonly<Record<DetachReason, EndReason>> = {
  disconnected: 'device_disconnected',
  deleted: 'device_deleted',
  unreachable: 'device_unreachable',
};

/** A site session as the FendVPN connect answer needs it. */
export interface OpenedSite {
  session: VpnSession;
  gateway: UsableGateway & { publicKey: string };
  allowedIps: string[];
}

/**
 * Engineers' VPN sessions: a computer's WireGuard key on the gateway of a device (device session,
 * REST) or of a site (site session, FendVPN), allowed to reach exactly what the session covers.
 * The client's peer is on the gateway before the answer. A session lives while it is pinged or
 * the gateway sees handshakes from it, and ends on DELETE, on the device's disconnect or
 * deletion, when its user is disabled or its API key deleted, or after 3 silent ping intervals.
 */
@Injectable()
export class VpnSessionsService implements OnModuleInit {
  private readonly logger = new Logger('VpnSessions');

  constructor(
    private readonly sessions: VpnSessionRepository,
    private readonly gateways: GatewayRepository,
    private readonly sync: GatewaySyncService,
    private readonly devicePeers: DevicePeers,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    // A device whose tunnel left its gateway cannot be reached: its sessions end with it.
    this.devicePeers.onRemoved((deviceId, why) => {
      void this.endForDevice(deviceId, END_REASON_OF[why]).catch((err: unknown) =>
        this.logger.error({ err, deviceId }, 'ending the sessions of a device failed'),
      );
    });
  }

  async openForDevice(
    scopeId: string,
    deviceId: string,
    publicKey: string,
    principal: Principal,
  ): Promise<SessionCreatedDto> {
    const target = await this.sessions.target(scopeId, deviceId);
    if (!target) throw AppError.notFound('Device', `No device ${deviceId} in this scope`);
    const status = toVpnStatusDto({
      deviceConnection: target.connectionStatus,
      reported: target.reported,
      tunnel: target.peer
        ? {
            gatewayId: target.peer.gatewayId,
            gatewayAddress: '',
            lastHandshakeOn: target.peer.lastHandshakeOn,
            rxBytes: 0,
            txBytes: 0,
          }
        : null,
      needsGateway: target.keyed,
      freshSeconds: this.config.vpnHandshakeFreshSeconds,
    });
    if (target.status !== 'ENABLED' || !status.connected || !target.gateway) {
      throw new AppError(
        'VPN_NOT_CONNECTED',
        "The device's VPN is not connected",
        target.keyed
          ? 'Connect the device first (POST …/vpn/_connect), then open the session'
          : 'The device announced no WireGuard key (e.g. a simulated agent): it has no tunnel a session can join',
      );
    }
    const gateway = target.gateway;
    if (gateway.connection !== 'CONNECTED' || gateway.publicKey === null) {
      throw unavailable(`Gateway ${gateway.name} is ${gateway.connection}`);
    }
    const pingToken = generateSecret();
    const { session, change } = await this.sessions.open({
      kind: 'device',
      scopeId,
      gatewayId: gateway.id,
      publicKey,
      pingTokenDigest: digest(pingToken),
      pingIntervalSeconds: this.config.vpnSessionPingIntervalSeconds,
      userId: principal.userId,
      apiKeyId: principal.userId ? null : principal.apiKeyId,
      coversDeviceId: deviceId,
      coversAccountIds: null,
      installationId: null,
      clientSessionId: null,
    });
    await this.confirm(session, change);
    this.logger.log({ sessionId: session.id, deviceId, gatewayId: gateway.id }, 'device session opened');
    return {
      id: session.id,
      pingToken,
      deviceId,
      gatewayId: gateway.id,
      tunnelAddress: session.tunnelIp,
      serverEndpoint: gateway.endpoint,
      serverPublicKey: gateway.publicKey,
      allowedIps: [`${target.tunnelIp}/32`],
      dns: [],
      keepalive: this.config.vpnKeepalive,
      pingInterval: session.pingIntervalSeconds,
      expiresOn: expiresOn(session),
    };
  }

  /**
   * A site session (FendVPN): the caller reaches the devices of its account subtree on gateway
   * `gatewayId`. An active session with the same client identifiers is replaced.
   */
  async openSite(
    principal: Principal,
    gateway: UsableGateway & { publicKey: string },
    publicKey: string,
    identifiers: { installationId: string; sessionId: string },
  ): Promise<OpenedSite & { pingToken: string }> {
    const previous = await this.sessions.findActiveByIdentifiers(
      principal,
      identifiers.installationId,
      identifiers.sessionId,
    );
    if (previous) await this.end([previous.id], 'replaced');
    const accounts = await this.sessions.subtree(principal.scopeId);
    const pingToken = generateSecret();
    const { session, change } = await this.sessions.open({
      kind: 'site',
      scopeId: principal.scopeId,
      gatewayId: gateway.id,
      publicKey,
      pingTokenDigest: digest(pingToken),
      pingIntervalSeconds: this.config.vpnSessionPingIntervalSeconds,
      userId: principal.userId,
      apiKeyId: principal.userId ? null : principal.apiKeyId,
      coversDeviceId: null,
      coversAccountIds: accounts.map((a) => a.id),
      installationId: identifiers.installationId,
      clientSessionId: identifiers.sessionId,
    });
    await this.confirm(session, change);
    this.logger.log(
      { sessionId: session.id, gatewayId: gateway.id, accounts: accounts.length },
      'site session opened',
    );
    return { session, gateway, allowedIps: accounts.map((a) => a.vpnSubnet), pingToken };
  }

  /** Waits until the gateway holds the client's peer; a gateway that does not ends the session again. */
  private async confirm(session: VpnSession, change: PeerChange): Promise<void> {
    this.sync.publish([change]);
    try {
      await this.sync.waitApplied(change.gatewayId, change.serial, Date.now() + GATEWAY_CONFIRM_MS);
    } catch (err) {
      await this.end([session.id], 'gateway_error').catch((endErr: unknown) =>
        this.logger.error(
          { err: endErr, sessionId: session.id },
          'ending a session the gateway did not take failed',
        ),
      );
      throw err;
    }
  }

  /** Ends an active session of a device (DELETE). */
  async close(scopeId: string, deviceId: string, id: string): Promise<void> {
    const session = await this.sessions.findActiveForDevice(scopeId, deviceId, id);
    if (!session) throw AppError.notFound('Session', `No active session ${id} of this device`);
    await this.end([session.id], 'closed', { confirm: true });
  }

  /** Ends a site session a FendVPN client names (disconnect); 404 when it is not active. */
  async closeByIdentifiers(principal: Principal, installationId: string, sessionId: string): Promise<void> {
    const session = await this.sessions.findActiveByIdentifiers(principal, installationId, sessionId);
    if (!session) throw AppError.notFound('Session', 'No active session with these identifiers');
    await this.end([session.id], 'closed', { confirm: true });
  }

  /**
   * A ping with the session's token (no access token needed, so a session outlives it). The same
   * 404 for an unknown session, an ended one and a wrong token: nothing is revealed.
   */
  async pingWithToken(
    scopeId: string | null,
    deviceId: string,
    id: string,
    pingToken: string,
  ): Promise<Date> {
    const session = await this.sessions.findActiveForDevice(scopeId, deviceId, id);
    if (!session || !digestEquals(pingToken, session.pingTokenDigest)) throw notActive();
    return this.touch(session.id);
  }

  /** A ping by a caller whose access token was checked (vpn:session in the scope). */
  async ping(scopeId: string, deviceId: string, id: string): Promise<Date> {
    const session = await this.sessions.findActiveForDevice(scopeId, deviceId, id);
    if (!session) throw notActive();
    return this.touch(session.id);
  }

  /** A FendVPN ping: the caller's own active session with these identifiers. */
  async pingByIdentifiers(principal: Principal, installationId: string, sessionId: string): Promise<Date> {
    const session = await this.sessions.findActiveByIdentifiers(principal, installationId, sessionId);
    if (!session) throw notActive();
    return this.touch(session.id);
  }

  private async touch(id: string): Promise<Date> {
    const expires = await this.sessions.touch(id);
    if (!expires) throw notActive();
    return expires;
  }

  async list(scopeId: string, q: SessionListQueryDto): Promise<ListResult<SessionDto>> {
    const { rows, total } = await this.sessions.list(scopeId, q, {
      active: q.active,
      deviceId: q.deviceId,
      kind: q.kind,
    });
    const live = await this.sessions.liveCounters(rows.filter((r) => !r.endedOn).map((r) => r.id));
    return toListResult(
      rows,
      q,
      (s) => {
        const counters = live.get(s.id);
        return {
          id: s.id,
          kind: s.kind,
          deviceId: s.coversDeviceId,
          gatewayId: s.gatewayId,
          userId: s.userId,
          apiKeyId: s.apiKeyId,
          tunnelAddress: s.tunnelIp,
          startedOn: s.startedOn,
          lastSeenOn: s.lastSeenOn,
          endedOn: s.endedOn,
          endReason: s.endReason,
          rxBytes: Math.max(Number(s.rxBytes), counters?.rxBytes ?? 0),
          txBytes: Math.max(Number(s.txBytes), counters?.txBytes ?? 0),
        };
      },
      total,
    );
  }

  async locations(scopeId: string): Promise<LocationDto[]> {
    return (await this.gateways.usableBy(scopeId)).map((g) => ({
      id: g.id,
      name: g.name,
      endpoint: g.endpoint,
      scopeId: g.scopeId,
      connection: g.connectionStatus,
    }));
  }

  /**
   * Ends the sessions and takes their peers off the gateways. An engineer's own close
   * (`confirm`) answers once the gateway dropped the peer, so "disconnected" means cut off;
   * a gateway that is offline or slow does not hold the answer up beyond the confirm
   * deadline: the session is ended in the database, and the gateway's next sync lacks the peer.
   */
  async end(ids: readonly string[], reason: EndReason, opts: { confirm?: boolean } = {}): Promise<void> {
    const changes = await this.sessions.end(ids, reason);
    this.sync.publish(changes);
    if (!opts.confirm) return;
    const deadline = Date.now() + GATEWAY_CONFIRM_MS;
    await Promise.all(
      changes.map((c) =>
        this.sync
          .waitApplied(c.gatewayId, c.serial, deadline)
          .catch((err: unknown) =>
            this.logger.warn(
              { err, gatewayId: c.gatewayId, serial: c.serial },
              'the gateway did not confirm a closed session; its next sync drops the peer',
            ),
          ),
      ),
    );
  }

  async endForDevice(deviceId: string, reason: EndReason): Promise<void> {
    const ids = await this.sessions.activeForDevice(deviceId);
    if (ids.length > 0) {
      await this.end(ids, reason);
      this.logger.log({ deviceId, sessions: ids.length, reason }, 'sessions to the device ended');
    }
  }

  /** Exposed for tests: ends every session that expired or lost its principal or device. */
  async sweep(): Promise<void> {
    const due = await this.sessions.toEnd();
    const byReason = new Map<EndReason, string[]>();
    for (const d of due) byReason.set(d.reason, [...(byReason.get(d.reason) ?? []), d.id]);
    for (const [reason, ids] of byReason) {
      await this.end(ids, reason);
      this.logger.log({ sessions: ids.length, reason }, 'sessions ended by the sweep');
    }
  }
}

function expiresOn(s: VpnSession): Date {
  return new Date(s.lastSeenOn.getTime() + 3 * s.pingIntervalSeconds * 1000);
}

function notActive(): AppError {
  return AppError.notFound('Session', 'No active session with this id and token; open a new one');
}
