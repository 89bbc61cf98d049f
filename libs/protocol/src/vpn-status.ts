// The VPN status an agent reports (on change, and in every command reply), its IXON-style status
// codes, and the ordering rule that keeps reordered or replayed reports from rolling status back.
import { isIpAddress } from './ip-address';
import {
  KuraMetric,
  KuraPayload,
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
 * Three-digit step codes after IXON's VPN client: `000`-`004` are states, `010` and above are
 * errors, grouped by hundreds per step of the connect flow (0xx general, 1xx profile, 2xx
 * interface/driver, 3xx tunnel/handshake, 4xx teardown). Receivers must accept unknown codes:
 * new ones may be added inside a group.
 */
export const StatusCodes = {
  UNKNOWN: '000',
  NOT_APPLICABLE: '001',
  PENDING: '002',
  DONE: '003',
  ACTIVE: '004',
  // 0xx general
  FAILED: '010',
  BUSY: '020',
  UNSUPPORTED_COMMAND: '030',
  // 1xx profile
  INVALID_PROFILE: '110',
  UNSUPPORTED_VPN_TYPE: '120',
  // 2xx interface / driver
  INTERFACE_SETUP_FAILED: '210',
  KEY_MISSING: '220',
  // 3xx tunnel / handshake
  HANDSHAKE_TIMEOUT: '310',
  PEER_UNREACHABLE: '320',
  // 4xx teardown
  TEARDOWN_FAILED: '410',
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
  [StatusCodes.BUSY]: 'busy: another command is running',
  [StatusCodes.UNSUPPORTED_COMMAND]: 'unsupported command',
  [StatusCodes.INVALID_PROFILE]: 'invalid VPN profile',
  [StatusCodes.UNSUPPORTED_VPN_TYPE]: 'unsupported VPN type',
  [StatusCodes.INTERFACE_SETUP_FAILED]: 'tunnel interface setup failed',
  [StatusCodes.KEY_MISSING]: 'private key missing',
  [StatusCodes.HANDSHAKE_TIMEOUT]: 'handshake timed out',
  [StatusCodes.PEER_UNREACHABLE]: 'VPN server unreachable',
  [StatusCodes.TEARDOWN_FAILED]: 'tunnel teardown failed',
};

const STEP_NAMES: readonly string[] = ['general', 'profile', 'interface', 'tunnel', 'teardown'];

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
  const step = STEP_NAMES[Number(code[0])] ?? `step ${code[0]}`;
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
  // seq must be an INT64 metric (DESIGN §6): another numeric type means a malformed report.
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
    seq === undefined ||
    !Number.isSafeInteger(seq) ||
    seq < 0
  ) {
    return null;
  }
  return { connected, ipAddress, status, statusCode, bootId, seq };
}

/**
 * Ordering rule (DESIGN §6). Within one boot of the agent, `seq` strictly grows, so a report with
 * the same bootId and a lower or equal seq is older than (or a replay of) the one we hold and is
 * ignored; that keeps reordered or redelivered QoS 1 messages from rolling status back. A report
 * with a different bootId comes from a new agent start (its seq restarts at 0) and is accepted.
 * Boot ids are random, not ordered, so a delayed report of a previous boot that arrives after the
 * new boot's first report is also accepted; the next report of the new boot corrects it.
 */
export function isNewerReport(
  candidate: { bootId: string; seq: number },
  current: { bootId: string; seq: number } | null,
): boolean {
  if (current === null) return true;
  if (candidate.bootId !== current.bootId) return true;
  return candidate.seq > current.seq;
}
