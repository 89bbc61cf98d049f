import { DISCONNECTED_IP, StatusCodes } from '@app/protocol';
import type { VpnStatusDto } from './dto/vpn.dto';

/** The status body of DESIGN §5 from what is stored; a device that never reported is idle at 0.0.0.0. */
export function toVpnStatusDto(
  deviceConnection: string,
  s: { connected: boolean; ipAddress: string; status: string; statusCode: string; reportedOn: Date } | null,
): VpnStatusDto {
  if (!s) {
    return {
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'idle',
      statusCode: StatusCodes.UNKNOWN,
      deviceConnection,
      reportedOn: null,
    };
  }
  return {
    connected: s.connected,
    ipAddress: s.connected ? s.ipAddress : DISCONNECTED_IP,
    status: s.status,
    statusCode: s.statusCode,
    deviceConnection,
    reportedOn: s.reportedOn,
  };
}
