// The in-memory shape of a Kura message: what the codec produces and consumes, plus typed
// builders and lookups so callers never touch protobuf field names.

/** Numbers equal the KuraMetric.ValueType enum on the wire. */
export enum KuraMetricType {
  DOUBLE = 0,
  FLOAT = 1,
  INT64 = 2,
  INT32 = 3,
  BOOL = 4,
  STRING = 5,
  BYTES = 6,
}

/**
 * INT64 values are JS numbers: exact up to Number.MAX_SAFE_INTEGER (2^53 - 1). The encoder rejects
 * anything that is not a safe integer; the decoder accepts the full int64 range and rounds beyond
 * 2^53 (no protocol value — timestamps in ms, sequence numbers, uptimes — gets near that).
 */
export type KuraMetricValue = number | boolean | string | Buffer;

export interface KuraMetric {
  name: string;
  type: KuraMetricType;
  value: KuraMetricValue;
}

export interface KuraPosition {
  latitude: number;
  longitude: number;
  altitude?: number;
  precision?: number;
  heading?: number;
  speed?: number;
  timestamp?: number;
  satellites?: number;
  status?: number;
}

export interface KuraPayload {
  /** Milliseconds since the epoch. */
  timestamp?: number;
  position?: KuraPosition;
  metrics: KuraMetric[];
  body?: Buffer;
}

export class KuraPayloadError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'KuraPayloadError';
  }
}

/** Builders that pair a value with the wire type it must be sent as. */
export const metric = {
  double: (name: string, value: number): KuraMetric => ({ name, type: KuraMetricType.DOUBLE, value }),
  /** Sent as a 32-bit float: values lose precision beyond ~7 significant digits. */
  float: (name: string, value: number): KuraMetric => ({ name, type: KuraMetricType.FLOAT, value }),
  int64: (name: string, value: number): KuraMetric => ({ name, type: KuraMetricType.INT64, value }),
  int32: (name: string, value: number): KuraMetric => ({ name, type: KuraMetricType.INT32, value }),
  bool: (name: string, value: boolean): KuraMetric => ({ name, type: KuraMetricType.BOOL, value }),
  string: (name: string, value: string): KuraMetric => ({ name, type: KuraMetricType.STRING, value }),
  bytes: (name: string, value: Buffer): KuraMetric => ({ name, type: KuraMetricType.BYTES, value }),
};

/**
 * The value of the metric called `name`. When a payload carries the same name twice the last one
 * wins, as in Kura, which keeps metrics in a map keyed by name.
 */
export function getMetric(payload: KuraPayload, name: string): KuraMetricValue | undefined {
  return findMetric(payload, name)?.value;
}

// The typed getters check the declared type and the JS type, so a hand-built metric whose value
// does not match its type reads as missing rather than as a lie.
export function getStringMetric(payload: KuraPayload, name: string): string | undefined {
  const found = findMetric(payload, name);
  return found?.type === KuraMetricType.STRING && typeof found.value === 'string' ? found.value : undefined;
}

export function getBoolMetric(payload: KuraPayload, name: string): boolean | undefined {
  const found = findMetric(payload, name);
  return found?.type === KuraMetricType.BOOL && typeof found.value === 'boolean' ? found.value : undefined;
}

const NUMERIC_TYPES: ReadonlySet<KuraMetricType> = new Set([
  KuraMetricType.DOUBLE,
  KuraMetricType.FLOAT,
  KuraMetricType.INT64,
  KuraMetricType.INT32,
]);

/** Only an INT64 metric: for counters and timestamps, where another numeric type is a sender bug. */
export function getInt64Metric(payload: KuraPayload, name: string): number | undefined {
  const found = findMetric(payload, name);
  return found?.type === KuraMetricType.INT64 && typeof found.value === 'number' ? found.value : undefined;
}

/** Any of the four numeric types (DOUBLE, FLOAT, INT64, INT32). */
export function getNumberMetric(payload: KuraPayload, name: string): number | undefined {
  const found = findMetric(payload, name);
  return found !== undefined && NUMERIC_TYPES.has(found.type) && typeof found.value === 'number'
    ? found.value
    : undefined;
}

/** The metric called `name` (the last one when repeated), whatever its type. */
export function findMetric(payload: KuraPayload, name: string): KuraMetric | undefined {
  const metrics = payload.metrics;
  for (let i = metrics.length - 1; i >= 0; i--) {
    if (metrics[i].name === name) return metrics[i];
  }
  return undefined;
}

// C0 controls other than tab, newline and carriage return, and DEL: never meaningful in a device's
// text, and U+0000 cannot even be stored in a Postgres text column.
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

/** A device's free text made safe to store and log: control characters become U+FFFD. */
export function storableText(text: string): string {
  return text.replace(UNSTORABLE, '\ufffd');
}

// eslint-disable-next-line no-control-regex
const ANY_CONTROL = /[\u0000-\u001f\u007f]/;

/** True when `text` holds no control character at all (for identifiers such as a boot id). */
export function isPrintable(text: string): boolean {
  return !ANY_CONTROL.test(text);
}

/** Latest instant a device's timestamp may name: the end of year 9999 (Postgres and JS agree). */
const MAX_TIMESTAMP_MS = 253_402_300_799_999;

/**
 * When the device says it sent the payload, or null when it did not say or named an instant
 * outside 1970..9999 (a device clock gone wrong must not break the write of the message).
 */
export function sentOnOf(payload: KuraPayload): Date | null {
  const ts = payload.timestamp;
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0 || ts > MAX_TIMESTAMP_MS) return null;
  return new Date(ts);
}
