// The BIRTH certificate: Kura's device profile metrics, published by the agent after every
// connect. Read tolerantly because real Kura gateways send many more metrics, in their own types.
import {
  KuraMetric,
  KuraMetricType,
  KuraPayload,
  findMetric,
  getStringMetric,
  metric,
  storableText,
} from './kura-payload';
import { Metrics } from './metrics';
import { isWireGuardKey } from './vpn-profile';

export interface BirthCertificate {
  displayName?: string;
  modelId?: string;
  serialNumber?: string;
  firmwareVersion?: string;
  connectionIp?: string;
  /** Kura application ids; containing VPNCLIENT-V2 means the device can run our VPN commands. */
  applicationIds: string[];
  /** The WireGuard public key (`vpn.public_key`), base64; left out when it is not a valid key. */
  publicKey?: string;
  /** A gateway's WireGuard UDP port (`vpn.listen_port`). */
  listenPort?: number;
  /** Milliseconds since the device booted. */
  uptime?: number;
}

/** Longest string kept from a BIRTH metric (and from each application id). */
export const MAX_BIRTH_STRING_LENGTH = 255;
/** Most application ids kept; a real Kura gateway announces a dozen or so. */
export const MAX_APPLICATION_IDS = 64;

const STRING_FIELDS = [
  ['displayName', Metrics.DISPLAY_NAME],
  ['modelId', Metrics.MODEL_ID],
  ['serialNumber', Metrics.SERIAL_NUMBER],
  ['firmwareVersion', Metrics.FIRMWARE_VERSION],
  ['connectionIp', Metrics.CONNECTION_IP],
] as const;

export function birthMetrics(b: BirthCertificate): KuraMetric[] {
  const metrics: KuraMetric[] = [];
  for (const [key, name] of STRING_FIELDS) {
    const value = b[key];
    if (value !== undefined) metrics.push(metric.string(name, value));
  }
  if (b.publicKey !== undefined) metrics.push(metric.string(Metrics.VPN_PUBLIC_KEY, b.publicKey));
  if (b.listenPort !== undefined) metrics.push(metric.int32(Metrics.VPN_LISTEN_PORT, b.listenPort));
  metrics.push(metric.string(Metrics.APPLICATION_IDS, b.applicationIds.join(',')));
  // A STRING of milliseconds, as Kura sends it (Kapua reads uptime as a string).
  if (b.uptime !== undefined) metrics.push(metric.string(Metrics.UPTIME, String(b.uptime)));
  return metrics;
}

/**
 * Never fails: unknown metrics are ignored, a known metric of the wrong type is left out, strings
 * are cut to MAX_BIRTH_STRING_LENGTH. Application ids are split before cutting, so a long list
 * cannot push VPNCLIENT-V2 off its end.
 */
export function readBirthCertificate(p: KuraPayload): BirthCertificate {
  const birth: BirthCertificate = { applicationIds: readApplicationIds(p) };
  for (const [key, name] of STRING_FIELDS) {
    const value = getStringMetric(p, name);
    if (value !== undefined) birth[key] = storableText(value.slice(0, MAX_BIRTH_STRING_LENGTH));
  }
  // A key that is not a canonical WireGuard key is dropped here, at the protocol boundary, so no
  // malformed key ever reaches a gateway's peer table.
  const publicKey = getStringMetric(p, Metrics.VPN_PUBLIC_KEY);
  if (isWireGuardKey(publicKey)) birth.publicKey = publicKey;
  const port = findMetric(p, Metrics.VPN_LISTEN_PORT);
  if (
    port?.type === KuraMetricType.INT32 &&
    typeof port.value === 'number' &&
    Number.isInteger(port.value) &&
    port.value >= 1 &&
    port.value <= 65535
  ) {
    birth.listenPort = port.value;
  }
  const uptime = readUptime(p);
  if (uptime !== undefined) birth.uptime = uptime;
  return birth;
}

function readApplicationIds(p: KuraPayload): string[] {
  const list = getStringMetric(p, Metrics.APPLICATION_IDS);
  if (list === undefined) return [];
  const ids: string[] = [];
  for (const part of list.split(',')) {
    const id = part.trim();
    if (id !== '') ids.push(storableText(id.slice(0, MAX_BIRTH_STRING_LENGTH)));
    if (ids.length === MAX_APPLICATION_IDS) break;
  }
  return ids;
}

// Kura sends uptime as a STRING of milliseconds, and so do we; numeric metrics are accepted too,
// as long as the result is a non-negative finite number.
function readUptime(p: KuraPayload): number | undefined {
  const found = findMetric(p, Metrics.UPTIME);
  if (found === undefined) return undefined;
  let value: number | undefined;
  if (found.type === KuraMetricType.STRING && typeof found.value === 'string') {
    value = /^[0-9]{1,16}$/.test(found.value.trim()) ? Number(found.value.trim()) : undefined;
  } else if (found.type <= KuraMetricType.INT32 && typeof found.value === 'number') {
    value = found.value;
  }
  return value !== undefined && Number.isFinite(value) && value >= 0 ? value : undefined;
}
