import { DISCONNECTED_IP, StatusCodes } from '@app/protocol';
import type { VpnStatusDto, VpnTunnelDto } from './dto/vpn.dto';

export interface ReportedStatus {
  connected: boolean;
  ipAddress: string;
  status: string;
  statusCode: string;
  reportedOn: Date;
}

export interface StatusFacts {
  /** The device's MQTT link: CONNECTED, DISCONNECTED, MISSING, NEVER_CONNECTED. */
  deviceConnection: string;
  /** The agent's last report; null when it never reported. */
  reported: ReportedStatus | null;
  /** The device's peer on its gateway, as the gateway sees it; null when it has none. */
  tunnel: VpnTunnelDto | null;
  /** True for a device with a WireGuard key: its tunnel exists only as a peer on a gateway. */
  needsGateway: boolean;
  /** A handshake at most this old proves the device is there while its MQTT link is down. */
  freshSeconds: number;
  now?: number;
}

/**
 * The status body from what is stored; a device that never reported is idle at 0.0.0.0. The
 * agent's word alone is not enough for `connected`: the device must be provably there, with its
 * MQTT link CONNECTED or, while the link is down, a gateway handshake fresher than `freshSeconds`
 * (WireGuard re-handshakes every 2 minutes while a tunnel carries keepalives); and a device with
 * a WireGuard key must still have its peer on a gateway.
 */
export function toVpnStatusDto(f: StatusFacts): VpnStatusDto {
  const { deviceConnection, reported: s, tunnel } = f;
  if (!s) {
    return {
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'idle',
      statusCode: StatusCodes.UNKNOWN,
      deviceConnection,
      reportedOn: null,
      tunnel,
    };
  }
  const handshake = tunnel?.lastHandshakeOn?.getTime();
  const provablyThere =
    deviceConnection === 'CONNECTED' ||
    (handshake !== undefined && (f.now ?? Date.now()) - handshake < f.freshSeconds * 1000);
  // The agent's last word was "up", but nothing shows the device is there any more, or its
  // gateway no longer carries its tunnel (removed after a long absence): say so.
  const lost = s.connected && !provablyThere ? StatusCodes.DEVICE_OFFLINE : null;
  const noTunnel = s.connected && f.needsGateway && !tunnel ? StatusCodes.TUNNEL_LOST : null;
  const problem = lost ?? noTunnel;
  if (problem) {
    return {
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'error',
      statusCode: problem,
      deviceConnection,
      reportedOn: s.reportedOn,
      tunnel,
    };
  }
  return {
    connected: s.connected,
    ipAddress: s.connected ? s.ipAddress : DISCONNECTED_IP,
    status: s.status,
    statusCode: s.statusCode,
    deviceConnection,
    reportedOn: s.reportedOn,
    tunnel,
  };
}
