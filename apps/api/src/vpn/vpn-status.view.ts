import { DISCONNECTED_IP, StatusCodes } from '@app/protocol';
import type { VpnStatusDto, VpnTunnelDto } from './dto/vpn.dto';

export interface ReportedStatus {
  connected: boolean;
  ipAddress: string;
  status: string;
  statusCode: string;
  reportedOn: Date;
}

/**
 * The status body from what is stored; a device that never reported is idle at 0.0.0.0. The
 * agent's word alone is not enough for `connected`: the device must be provably there, with its
 * MQTT link CONNECTED or, while the link is down, a gateway handshake fresher than
 * `freshSeconds` (WireGuard re-handshakes every 2 minutes while a tunnel carries keepalives).
 */
export function toVpnStatusDto(
  deviceConnection: string,
  s: ReportedStatus | null,
  tunnel: VpnTunnelDto | null,
  freshSeconds: number,
  now = Date.now(),
): VpnStatusDto {
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
    deviceConnection === 'CONNECTED' || (handshake !== undefined && now - handshake < freshSeconds * 1000);
  if (s.connected && !provablyThere) {
    // The agent's last word was "up", but nothing shows the device is there any more.
    return {
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'error',
      statusCode: StatusCodes.DEVICE_OFFLINE,
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
