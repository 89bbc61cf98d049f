import { Inject, Injectable, Logger } from '@nestjs/common';
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { AuthService } from '../auth/auth.service';
import { TokenService } from '../auth/token.service';
import type { Principal } from '../auth/principal';
import { GatewayRepository, type UsableGateway } from '../gateways/gateway.repository';
import { VpnSessionRepository } from '../sessions/vpn-session.repository';
import { VpnSessionsService } from '../sessions/vpn-sessions.service';
import type {
  ConnectDto,
  ConnectResponseDto,
  FendCredentialsDto,
  FendLocationDto,
  SigninDto,
  SigninResponseDto,
} from './fendvpn.dto';

/** A gateway a FendVPN client can use: it has a key and its endpoint resolves to IPv4. */
interface OfferedGateway extends UsableGateway {
  publicKey: string;
  ipv4: string;
  port: number;
}

/**
 * FendVPN's client flow on top of the cloud's accounts, gateways and sessions: sign in to a
 * project (the account), list locations (the gateways the account may use), get node
 * credentials (this API serves connect), connect with a WireGuard key (a site session: the
 * devices of the caller's account subtree), ping, disconnect.
 */
@Injectable()
export class FendVpnService {
  private readonly logger = new Logger('FendVpn');

  constructor(
    private readonly auth: AuthService,
    private readonly tokens: TokenService,
    private readonly gateways: GatewayRepository,
    private readonly sessionsRepo: VpnSessionRepository,
    private readonly sessions: VpnSessionsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async signin(source: string, body: SigninDto, baseUrl: string): Promise<SigninResponseDto> {
    let issued;
    if (body.auth_type === 'password') {
      const colon = body.auth_info.indexOf(':');
      if (colon <= 0) {
        throw AppError.invalid(
          'Malformed auth_info',
          'With auth_type "password", auth_info is "username:password"',
        );
      }
      issued = await this.auth.loginUser(
        source,
        body.auth_info.slice(0, colon),
        body.auth_info.slice(colon + 1),
      );
    } else {
      issued = await this.auth.loginApiKey(source, body.auth_info);
    }
    // A user or key signs in to its own account only; a wrong project looks like wrong credentials.
    if ((await this.sessionsRepo.accountName(issued.scopeId)) !== body.project) {
      const claims = JSON.parse(Buffer.from(issued.tokenId.split('.')[1], 'base64url').toString('utf8')) as {
        jti: string;
      };
      await this.tokens.revoke(claims.jti);
      throw new AppError('AUTH_FAILED', 'Authentication failed', 'Wrong credentials');
    }
    return {
      access_token: issued.tokenId,
      refresh_token: issued.refreshToken,
      discovery_addresses: [this.config.publicUrl ?? baseUrl],
    };
  }

  async locations(principal: Principal): Promise<FendLocationDto[]> {
    const offered = await this.offered(principal.scopeId);
    return offered.map((g) => ({
      id: g.id,
      name: g.name,
      labels: [g.connectionStatus === 'CONNECTED' ? 'online' : 'offline'],
    }));
  }

  async credentials(principal: Principal, location: string, baseUrl: string): Promise<FendCredentialsDto[]> {
    const gateway = (await this.offered(principal.scopeId)).find((g) => g.id === location);
    if (!gateway) throw AppError.notFound('Location', `No location ${location} for this project`);
    return [{ id: gateway.id, connection_addresses: [this.config.publicUrl ?? baseUrl] }];
  }

  async connect(principal: Principal, body: ConnectDto): Promise<ConnectResponseDto> {
    const gateway = (await this.offered(principal.scopeId)).find((g) => g.id === body.location);
    if (!gateway) throw AppError.notFound('Location', `No location ${body.location} for this project`);
    if (gateway.connectionStatus !== 'CONNECTED') {
      throw new AppError(
        'TUNNEL_ERROR',
        'Tunnel error',
        `Location ${gateway.name} is offline; try another one`,
      );
    }
    let opened;
    try {
      opened = await this.sessions.openSite(principal, gateway, body.info_wireguard.public_key, {
        installationId: body.identifiers.installation_id,
        sessionId: body.identifiers.session_id,
      });
    } catch (err) {
      if (err instanceof AppError && ['GATEWAY_UNAVAILABLE', 'GATEWAY_TIMEOUT'].includes(err.code)) {
        this.logger.warn({ gatewayId: gateway.id, err: err.message }, 'gateway did not take a site session');
        throw new AppError(
          'TUNNEL_ERROR',
          'Tunnel error',
          `Location ${gateway.name} did not accept the tunnel; retry`,
        );
      }
      throw err;
    }
    return {
      info_wireguard: {
        server_public_key: gateway.publicKey,
        server_ipv4: gateway.ipv4,
        server_port: gateway.port,
        tunnel_ipv4: opened.session.tunnelIp,
        keepalive: this.config.vpnKeepalive,
        allowed_ips: opened.allowedIps,
        dns: [],
        ping_interval: opened.session.pingIntervalSeconds,
      },
    };
  }

  async ping(principal: Principal, installationId: string, sessionId: string): Promise<void> {
    await this.sessions.pingByIdentifiers(principal, installationId, sessionId);
  }

  async disconnect(principal: Principal, installationId: string, sessionId: string): Promise<void> {
    await this.sessions.closeByIdentifiers(principal, installationId, sessionId);
  }

  /** The account's usable gateways with a key whose endpoint gives an IPv4 address (others are not offered). */
  private async offered(scopeId: string): Promise<OfferedGateway[]> {
    const usable = await this.gateways.usableBy(scopeId);
    const offered = await Promise.all(
      usable.map(async (g): Promise<OfferedGateway | null> => {
        if (!g.publicKey) return null;
        const colon = g.endpoint.lastIndexOf(':');
        const host = g.endpoint.slice(0, colon);
        const port = Number(g.endpoint.slice(colon + 1));
        const ipv4 = isIPv4(host) ? host : await resolveIpv4(host);
        return ipv4 ? { ...g, publicKey: g.publicKey, ipv4, port } : null;
      }),
    );
    return offered.filter((g): g is OfferedGateway => g !== null);
  }
}

async function resolveIpv4(host: string): Promise<string | null> {
  if (host.startsWith('[')) return null;
  try {
    return (await lookup(host, { family: 4 })).address;
  } catch {
    return null;
  }
}
