// KuraPayload <-> bytes. Runs for every MQTT message, so the protobufjs encoder is generated once
// (kura-payload.schema.ts) and the decoder reads straight into the application shape in one pass.
//
// Why decoding does not use the generated protobufjs decoder: it trusts the wire type of known
// fields (a timestamp sent as a string would be read as a varint and yield garbage), and its Buffer
// string reader clips an over-long length instead of failing. Devices are untrusted input, so the
// decoder below checks every wire type, every length and every required field, and skips unknown
// fields (Kura reserves 3-4999 for extensions) without failing.
import { Reader } from 'protobufjs';
import {
  KuraMetric,
  KuraMetricType,
  KuraMetricValue,
  KuraPayload,
  KuraPayloadError,
  KuraPosition,
} from './kura-payload';
import { KuraPayloadProto, WireType } from './kura-payload.schema';

export * from './kura-payload';

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const TWO_POW_32 = 0x100000000;

// ---------------------------------------------------------------------------------------------
// Encoding

/** KuraMetric as the generated protobufjs encoder expects it (proto field names). */
type ProtoMetric = {
  name: string;
  type: KuraMetricType;
  double_value?: number;
  float_value?: number;
  long_value?: number;
  int_value?: number;
  bool_value?: boolean;
  string_value?: string;
  bytes_value?: Uint8Array;
};

type ProtoPayload = {
  timestamp?: number;
  position?: KuraPosition;
  metric: ProtoMetric[];
  body?: Uint8Array;
};

/**
 * Encodes fields in field-number order, as protoc does. Throws KuraPayloadError when a value
 * cannot be represented (e.g. an INT64 metric that is not a safe integer) rather than sending a
 * silently truncated number.
 */
export function encodeKuraPayload(payload: KuraPayload): Buffer {
  if (!Array.isArray(payload.metrics)) throw new KuraPayloadError('metrics must be an array');
  const message: ProtoPayload = { metric: payload.metrics.map(toProtoMetric) };
  if (payload.timestamp !== undefined) {
    if (!Number.isSafeInteger(payload.timestamp)) {
      throw new KuraPayloadError(`timestamp must be a safe integer, got ${String(payload.timestamp)}`);
    }
    message.timestamp = payload.timestamp;
  }
  if (payload.position !== undefined) {
    // Position property names equal the proto field names, so it is passed through unchanged.
    checkPosition(payload.position);
    message.position = payload.position;
  }
  if (payload.body !== undefined) {
    if (!(payload.body instanceof Uint8Array)) throw new KuraPayloadError('body must be a Buffer');
    message.body = payload.body;
  }
  const bytes = KuraPayloadProto.encode(message).finish();
  // In Node protobufjs writes into a Buffer already; the copy-free view is only a type-level fallback.
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function toProtoMetric(m: KuraMetric): ProtoMetric {
  const { name, type, value } = m;
  if (typeof name !== 'string') throw new KuraPayloadError('metric name must be a string');
  switch (type) {
    case KuraMetricType.DOUBLE:
      if (typeof value === 'number') return { name, type, double_value: value };
      break;
    case KuraMetricType.FLOAT:
      if (typeof value === 'number') return { name, type, float_value: value };
      break;
    case KuraMetricType.INT64:
      if (typeof value === 'number' && Number.isSafeInteger(value)) return { name, type, long_value: value };
      break;
    case KuraMetricType.INT32:
      if (isInt32(value)) return { name, type, int_value: value };
      break;
    case KuraMetricType.BOOL:
      if (typeof value === 'boolean') return { name, type, bool_value: value };
      break;
    case KuraMetricType.STRING:
      if (typeof value === 'string') return { name, type, string_value: value };
      break;
    case KuraMetricType.BYTES:
      if (value instanceof Uint8Array) return { name, type, bytes_value: value };
      break;
    default:
      throw new KuraPayloadError(`metric '${name}' has unknown type ${String(type)}`);
  }
  throw new KuraPayloadError(`metric '${name}' of type ${KuraMetricType[type]} has an invalid value`);
}

function checkPosition(p: KuraPosition): void {
  if (typeof p.latitude !== 'number' || typeof p.longitude !== 'number') {
    throw new KuraPayloadError('position needs numeric latitude and longitude');
  }
  for (const key of ['altitude', 'precision', 'heading', 'speed'] as const) {
    if (p[key] !== undefined && typeof p[key] !== 'number') {
      throw new KuraPayloadError(`position.${key} must be a number`);
    }
  }
  if (p.timestamp !== undefined && !Number.isSafeInteger(p.timestamp)) {
    throw new KuraPayloadError('position.timestamp must be a safe integer');
  }
  if (p.satellites !== undefined && !isInt32(p.satellites)) {
    throw new KuraPayloadError('position.satellites must be a 32-bit integer');
  }
  if (p.status !== undefined && !isInt32(p.status)) {
    throw new KuraPayloadError('position.status must be a 32-bit integer');
  }
}

function isInt32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Decodes untrusted bytes. An empty buffer is an empty payload. Throws KuraPayloadError on
 * truncation, a known field with the wrong wire type, a metric without name or type, a metric
 * whose value field does not match its type, or an invalid wire type. Byte values (body,
 * BYTES metrics) are copies, so the input buffer may be reused.
 */
export function decodeKuraPayload(bytes: Uint8Array): KuraPayload {
  if (!(bytes instanceof Uint8Array)) throw new KuraPayloadError('KuraPayload must be a byte array');
  // A Buffer view (no copy) lets protobufjs pick its Buffer reader and lets us decode strings natively.
  const buffer = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return readPayload(Reader.create(buffer), buffer);
  } catch (error) {
    if (error instanceof KuraPayloadError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new KuraPayloadError(`malformed KuraPayload: ${reason}`, { cause: error });
  }
}

function readPayload(r: Reader, buf: Buffer): KuraPayload {
  const payload: KuraPayload = { metrics: [] };
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    switch (field) {
      case 1:
        expectWireType(wireType, WireType.VARINT, 'timestamp', r);
        payload.timestamp = readInt64(r, buf);
        break;
      case 2:
        expectWireType(wireType, WireType.LENGTH_DELIMITED, 'position', r);
        // proto2 would merge repeated occurrences; Kura never sends two, so the last one wins.
        payload.position = readPosition(r, buf);
        break;
      case 5000:
        expectWireType(wireType, WireType.LENGTH_DELIMITED, 'metric', r);
        payload.metrics.push(readMetric(r, buf));
        break;
      case 5001:
        expectWireType(wireType, WireType.LENGTH_DELIMITED, 'body', r);
        payload.body = readBytes(r, buf);
        break;
      default:
        skipUnknown(r, field, wireType);
    }
  }
  return payload;
}

/** Wire field carrying a metric's value, by KuraMetricType. */
const VALUE_FIELD_OF_TYPE: readonly number[] = [3, 4, 5, 6, 7, 8, 9];
const VALUE_FIELD_NAMES: Readonly<Record<number, string>> = {
  3: 'double_value',
  4: 'float_value',
  5: 'long_value',
  6: 'int_value',
  7: 'bool_value',
  8: 'string_value',
  9: 'bytes_value',
};

function readMetric(r: Reader, buf: Buffer): KuraMetric {
  const outerLen = enterMessage(r, 'metric');
  let name: string | undefined;
  let type: number | undefined;
  let value: KuraMetricValue | undefined;
  // Bit n set = value field n was present; lets us reject a value that does not match the type.
  let valueFields = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    switch (field) {
      case 1:
        expectWireType(wireType, WireType.LENGTH_DELIMITED, 'metric.name', r);
        name = readString(r, buf);
        break;
      case 2:
        expectWireType(wireType, WireType.VARINT, 'metric.type', r);
        type = r.int32();
        break;
      case 3:
        expectWireType(wireType, WireType.FIXED64, 'metric.double_value', r);
        value = r.double();
        break;
      case 4:
        expectWireType(wireType, WireType.FIXED32, 'metric.float_value', r);
        value = r.float();
        break;
      case 5:
        expectWireType(wireType, WireType.VARINT, 'metric.long_value', r);
        value = readInt64(r, buf);
        break;
      case 6:
        expectWireType(wireType, WireType.VARINT, 'metric.int_value', r);
        value = r.int32();
        break;
      case 7:
        expectWireType(wireType, WireType.VARINT, 'metric.bool_value', r);
        value = r.bool();
        break;
      case 8:
        expectWireType(wireType, WireType.LENGTH_DELIMITED, 'metric.string_value', r);
        value = readString(r, buf);
        break;
      case 9:
        expectWireType(wireType, WireType.LENGTH_DELIMITED, 'metric.bytes_value', r);
        value = readBytes(r, buf);
        break;
      default:
        skipUnknown(r, field, wireType);
        continue;
    }
    if (field >= 3) valueFields |= 1 << field;
  }
  leaveMessage(r, outerLen, 'metric');

  if (name === undefined) throw new KuraPayloadError('metric without a name');
  if (type === undefined) throw new KuraPayloadError(`metric '${name}' without a type`);
  const expectedField = VALUE_FIELD_OF_TYPE[type];
  if (expectedField === undefined) throw new KuraPayloadError(`metric '${name}' has unknown type ${type}`);
  const typeName = KuraMetricType[type];
  if (valueFields !== 1 << expectedField) {
    const stray = valueFields & ~(1 << expectedField);
    if (stray === 0) throw new KuraPayloadError(`metric '${name}' of type ${typeName} has no value`);
    const strayField = 31 - Math.clz32(stray);
    throw new KuraPayloadError(
      `metric '${name}' of type ${typeName} carries ${VALUE_FIELD_NAMES[strayField]}`,
    );
  }
  return { name, type, value: value as KuraMetricValue };
}

function readPosition(r: Reader, buf: Buffer): KuraPosition {
  const outerLen = enterMessage(r, 'position');
  let latitude: number | undefined;
  let longitude: number | undefined;
  const optional: Omit<KuraPosition, 'latitude' | 'longitude'> = {};
  while (r.pos < r.len) {
    const tag = r.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    switch (field) {
      case 1:
        expectWireType(wireType, WireType.FIXED64, 'position.latitude', r);
        latitude = r.double();
        break;
      case 2:
        expectWireType(wireType, WireType.FIXED64, 'position.longitude', r);
        longitude = r.double();
        break;
      case 3:
        expectWireType(wireType, WireType.FIXED64, 'position.altitude', r);
        optional.altitude = r.double();
        break;
      case 4:
        expectWireType(wireType, WireType.FIXED64, 'position.precision', r);
        optional.precision = r.double();
        break;
      case 5:
        expectWireType(wireType, WireType.FIXED64, 'position.heading', r);
        optional.heading = r.double();
        break;
      case 6:
        expectWireType(wireType, WireType.FIXED64, 'position.speed', r);
        optional.speed = r.double();
        break;
      case 7:
        expectWireType(wireType, WireType.VARINT, 'position.timestamp', r);
        optional.timestamp = readInt64(r, buf);
        break;
      case 8:
        expectWireType(wireType, WireType.VARINT, 'position.satellites', r);
        optional.satellites = r.int32();
        break;
      case 9:
        expectWireType(wireType, WireType.VARINT, 'position.status', r);
        optional.status = r.int32();
        break;
      default:
        skipUnknown(r, field, wireType);
    }
  }
  leaveMessage(r, outerLen, 'position');
  if (latitude === undefined || longitude === undefined) {
    throw new KuraPayloadError('position without latitude or longitude');
  }
  return { latitude, longitude, ...optional };
}

/** Narrows the reader to an embedded message; returns the outer limit to restore afterwards. */
function enterMessage(r: Reader, what: string): number {
  const length = r.uint32();
  const end = r.pos + length;
  if (end > r.len) throw truncated(what, r, length);
  const outerLen = r.len;
  r.len = end;
  return outerLen;
}

function leaveMessage(r: Reader, outerLen: number, what: string): void {
  // Every read checks r.len, so this only guards against a future read that does not.
  if (r.pos !== r.len) throw new KuraPayloadError(`${what} overruns its length at offset ${r.pos}`);
  r.len = outerLen;
}

function expectWireType(actual: number, expected: number, field: string, r: Reader): void {
  if (actual !== expected) {
    throw new KuraPayloadError(`${field} has wire type ${actual}, expected ${expected} (offset ${r.pos})`);
  }
}

function skipUnknown(r: Reader, field: number, wireType: number): void {
  if (field === 0) throw new KuraPayloadError(`field number 0 at offset ${r.pos}`);
  // A lone end-group has nothing to close; skipType rejects wire types 6 and 7 itself.
  if (wireType === WireType.END_GROUP) throw new KuraPayloadError(`unexpected end-group at offset ${r.pos}`);
  r.skipType(wireType);
}

/** protobufjs would allocate a LongBits and a Long per int64; this reads the varint into a number. */
function readInt64(r: Reader, buf: Buffer): number {
  let lo = 0;
  let hi = 0;
  for (let i = 0; i < 10; i++) {
    if (r.pos >= r.len) throw truncated('varint', r, 1);
    const b = buf[r.pos++];
    if (i < 4) {
      lo |= (b & 0x7f) << (7 * i);
    } else if (i === 4) {
      lo |= (b & 0x0f) << 28;
      hi |= (b & 0x7f) >> 4;
    } else {
      hi |= (b & 0x7f) << (7 * i - 32);
    }
    // hi is a signed 32-bit int after the bit operations, so negative int64 values come out right.
    if (b < 0x80) return hi * TWO_POW_32 + (lo >>> 0);
  }
  throw new KuraPayloadError(`varint longer than 10 bytes at offset ${r.pos}`);
}

function readString(r: Reader, buf: Buffer): string {
  const length = r.uint32();
  const start = r.pos;
  if (start + length > r.len) throw truncated('string', r, length);
  r.pos = start + length;
  return buf.toString('utf8', start, r.pos);
}

function readBytes(r: Reader, buf: Buffer): Buffer {
  const length = r.uint32();
  const start = r.pos;
  if (start + length > r.len) throw truncated('bytes', r, length);
  r.pos = start + length;
  return Buffer.from(buf.subarray(start, r.pos));
}

function truncated(what: string, r: Reader, length: number): KuraPayloadError {
  return new KuraPayloadError(`truncated ${what}: ${length} bytes at offset ${r.pos}, ${r.len - r.pos} left`);
}
