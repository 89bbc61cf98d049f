// The VPN status an agent reports (on change, and in every command reply), its IXON-style status
// codes, and the ordering rule that keeps reordered or replayed reports from rolling status back.
import { isIpAddress } from './ip-address';
import {
  KuraMetric,
  KuraPayload,
  isPrintable,
  getBoolMetric,
  getInt64Metric,
  getStringMetric,
  metric,
} from './kura-payload';
import { Metrics } from './metrics';

export type VpnStatus = 'idle' | 'connecting' | 'connected' | 'disconnecting' | 'error';
export const VPN_STATUSES: readonly VpnStatus[] = [
  'idle',
  'connecting',
  'connected',
  'disconnecting',
  'error',
];

/** The address reported while no tunnel is up (Everyware Cloud's convention). */
export const DISCONNECTED_IP = '0.0.0.0';

/**
 * Three-digit status codes after IXON's VPN client, one table for devices and for the
 * engineer's client. `000`-`004` are states; `010` is an unknown error; errors from `100` up are
 * grouped by hundreds per step: 1XY discovery and sign-in to the cloud, 2XY the agent (the device
 * and its VPN), 3XY the VPN configuration (profile, gateway, session), 7XY the tunnel (interface,
 * handshake, teardown), 8XY/9XY routes. Receivers must accept unknown codes: new ones may be added
 * inside a group, and an unknown code of a group means "an error in that step".
 */
export const StatusCodes = {
  UNKNOWN: '000',
  NOT_APPLICABLE: '001',
  PENDING: '002',
  DONE: '003',
  ACTIVE: '004',
  FAILED: '010',
  // 1XY discovery / sign-in to the cloud
  CLOUD_UNREACHABLE: '110',
  SIGN_IN_FAILED: '120',
  ACCESS_DENIED: '130',
  // 2XY the agent: the device and its VPN
  DEVICE_NOT_FOUND: '210',
  DEVICE_OFFLINE: '220',
  AGENT_BUSY: '230',
  UNSUPPORTED_COMMAND: '240',
  DEVICE_VPN_FAILED: '250',
  KEY_MISSING: '260',
  // 3XY VPN configuration: profile, gateway, session
  INVALID_PROFILE: '310',
  UNSUPPORTED_VPN_TYPE: '320',
  NO_GATEWAY: '330',
  GATEWAY_UNAVAILABLE: '340',
  SESSION_REFUSED: '350',
  // 7XY the tunnel (WireGuard)
  INTERFACE_SETUP_FAILED: '710',
  HANDSHAKE_TIMEOUT: '720',
  PEER_UNREACHABLE: '730',
  TEARDOWN_FAILED: '740',
  TUNNEL_LOST: '750',
  // 8XY routes
  ROUTE_SETUP_FAILED: '810',
  DEVICE_UNREACHABLE: '820',
} as const;

export type StatusCode = (typeof StatusCodes)[keyof typeof StatusCodes];

const STATUS_CODE_PATTERN = /^[0-9]{3}$/;

const DESCRIPTIONS: Readonly<Record<string, string>> = {
  [StatusCodes.UNKNOWN]: 'unknown',
  [StatusCodes.NOT_APPLICABLE]: 'not applicable',
  [StatusCodes.PENDING]: 'pending',
  [StatusCodes.DONE]: 'done',
  [StatusCodes.ACTIVE]: 'active',
  [StatusCodes.FAILED]: 'failed',
  [StatusCodes.CLOUD_UNREACHABLE]: 'the cloud could not be reached',
  [StatusCodes.SIGN_IN_FAILED]: 'sign-in to the cloud failed',
  [StatusCodes.ACCESS_DENIED]: 'access denied by the cloud',
  [StatusCodes.DEVICE_NOT_FOUND]: 'device not found',
  [StatusCodes.DEVICE_OFFLINE]: 'device not connected to the cloud',
  [StatusCodes.AGENT_BUSY]: 'busy: another command is running',
  [StatusCodes.UNSUPPORTED_COMMAND]: 'unsupported command',
  [StatusCodes.DEVICE_VPN_FAILED]: 'the device could not bring its VPN up',
  [StatusCodes.KEY_MISSING]: 'private key missing',
  [StatusCodes.INVALID_PROFILE]: 'invalid VPN profile',
  [StatusCodes.UNSUPPORTED_VPN_TYPE]: 'unsupported VPN type',
  [StatusCodes.NO_GATEWAY]: 'no VPN gateway serves the device',
  [StatusCodes.GATEWAY_UNAVAILABLE]: 'VPN gateway unavailable',
  [StatusCodes.SESSION_REFUSED]: 'VPN session refused',
  [StatusCodes.INTERFACE_SETUP_FAILED]: 'tunnel interface setup failed',
  [StatusCodes.HANDSHAKE_TIMEOUT]: 'handshake timed out',
  [StatusCodes.PEER_UNREACHABLE]: 'VPN server unreachable',
  [StatusCodes.TEARDOWN_FAILED]: 'tunnel teardown failed',
  [StatusCodes.TUNNEL_LOST]: 'tunnel lost',
  [StatusCodes.ROUTE_SETUP_FAILED]: 'route setup failed',
  [StatusCodes.DEVICE_UNREACHABLE]: 'device unreachable through the tunnel',
};

/** The step of each hundred; a code of an unlisted hundred is "an error in step N". */
const STEP_NAMES: Readonly<Record<string, string>> = {
  '1': 'sign-in',
  '2': 'agent',
  '3': 'VPN configuration',
  '7': 'tunnel',
  '8': 'route',
  '9': 'route',
};

export function isStatusCode(code: string): boolean {
  return typeof code === 'string' && STATUS_CODE_PATTERN.test(code);
}

/** True for any well-formed code from `010` up, known or not. */
export function isErrorStatusCode(code: string): boolean {
  return isStatusCode(code) && Number(code) >= 10;
}

export function describeStatusCode(code: string): string {
  if (!isStatusCode(code)) return 'invalid status code';
  if (Object.hasOwn(DESCRIPTIONS, code)) return DESCRIPTIONS[code];
  if (!isErrorStatusCode(code)) return 'unknown state';
  if (code[0] === '0') return 'error';
  const step = STEP_NAMES[code[0]] ?? `step ${code[0]}`;
  return `${step} error`;
}

export interface VpnStatusReport {
  connected: boolean;
  /** Tunnel address, or DISCONNECTED_IP. */
  ipAddress: string;
  status: VpnStatus;
  statusCode: string;
  /** New random id per agent start. */
  bootId: string;
  /** Grows by one with each report of one boot. */
  seq: number;
}

const MAX_BOOT_ID_LENGTH = 64;

export function statusMetrics(r: VpnStatusReport): KuraMetric[] {
  return [
    metric.bool(Metrics.VPN_CONNECTED, r.connected),
    metric.string(Metrics.VPN_IP_ADDRESS, r.ipAddress),
    metric.string(Metrics.VPN_STATUS, r.status),
    metric.string(Metrics.VPN_STATUS_CODE, r.statusCode),
    metric.string(Metrics.VPN_BOOT_ID, r.bootId),
    metric.int64(Metrics.VPN_SEQ, r.seq),
  ];
}

/** The report in a payload, or null when any status metric is missing, mistyped or invalid. */
export function readStatusReport(p: KuraPayload): VpnStatusReport | null {
  const connected = getBoolMetric(p, Metrics.VPN_CONNECTED);
  const ipAddress = getStringMetric(p, Metrics.VPN_IP_ADDRESS);
  const status = getStringMetric(p, Metrics.VPN_STATUS) as VpnStatus | undefined;
  const statusCode = getStringMetric(p, Metrics.VPN_STATUS_CODE);
  const bootId = getStringMetric(p, Metrics.VPN_BOOT_ID);
  // seq must be an INT64 metric (docs/protocol.md): another numeric type means a malformed report.
  const seq = getInt64Metric(p, Metrics.VPN_SEQ);
  if (
    connected === undefined ||
    ipAddress === undefined ||
    !isIpAddress(ipAddress) ||
    status === undefined ||
    !VPN_STATUSES.includes(status) ||
    statusCode === undefined ||
    !isStatusCode(statusCode) ||
    bootId === undefined ||
    bootId.length === 0 ||
    bootId.length > MAX_BOOT_ID_LENGTH ||
    !isPrintable(bootId) ||
    seq === undefined ||
    !Number.isSafeInteger(seq) ||
    seq < 0
  ) {
    return null;
  }
  return { connected, ipAddress, status, statusCode, bootId, seq };
}
