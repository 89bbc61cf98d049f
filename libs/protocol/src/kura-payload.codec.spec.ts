import { Writer } from 'protobufjs';
import {
  KuraMetric,
  KuraMetricType,
  KuraPayload,
  KuraPayloadError,
  decodeKuraPayload,
  encodeKuraPayload,
  metric,
} from './kura-payload.codec';
import { KuraPayloadProto } from './kura-payload.schema';

/** Bytes from hex laid out one field per line; anything after `|` on a line is a comment. */
function hex(text: string): Buffer {
  const digits = text
    .split('\n')
    .map((line) => line.split('|')[0])
    .join('')
    .replace(/\s/g, '');
  if (!/^([0-9a-f]{2})*$/.test(digits)) throw new Error(`bad hex vector: ${digits}`);
  return Buffer.from(digits, 'hex');
}

function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

// Tags used below (tag = field number << 3 | wire type, written as a varint):
//   KuraPayload  timestamp   1/varint  -> 08        position  2/len   -> 12
//                metric   5000/len     -> 40002 = c2 b8 02
//                body     5001/len     -> 40010 = ca b8 02
//   KuraMetric   name 1/len -> 0a   type 2/varint -> 10   double_value 3/fixed64 -> 19
//                float_value 4/fixed32 -> 25   long_value 5/varint -> 28   int_value 6/varint -> 30
//                bool_value 7/varint -> 38   string_value 8/len -> 42   bytes_value 9/len -> 4a
//   KuraPosition latitude 1/fixed64 -> 09   longitude 2/fixed64 -> 11   altitude 3/fixed64 -> 19
//                timestamp 7/varint -> 38   satellites 8/varint -> 40   status 9/varint -> 48

describe('KuraPayload codec', () => {
  describe('decoding hand-built bytes', () => {
    it('should decode an empty buffer as an empty payload', () => {
      expect(decodeKuraPayload(Buffer.alloc(0))).toEqual({ metrics: [] });
    });

    it('should decode a timestamp, a STRING metric and a body', () => {
      const bytes = hex(`
        08 80 d0 95 ff bc 31          | timestamp: varint 1700000000000
        c2 b8 02 0c                   | metric (field 5000, len), 12 bytes:
          0a 04 6e 61 6d 65           |   name "name" (len 4)
          10 05                       |   type STRING (5)
          42 02 68 69                 |   string_value "hi" (len 2)
        ca b8 02 03 01 02 03          | body (field 5001, len 3): 01 02 03
      `);
      expect(decodeKuraPayload(bytes)).toEqual({
        timestamp: 1700000000000,
        metrics: [{ name: 'name', type: KuraMetricType.STRING, value: 'hi' }],
        body: Buffer.from([1, 2, 3]),
      });
    });

    it('should decode every value type', () => {
      const bytes = hex(`
        c2 b8 02 0e  0a 01 64  10 00  19 00 00 00 00 00 00 f8 3f           | d: DOUBLE 1.5
        c2 b8 02 0a  0a 01 66  10 01  25 00 00 c0 3f                       | f: FLOAT 1.5
        c2 b8 02 10  0a 01 6c  10 02  28 ff ff ff ff ff ff ff ff ff 01     | l: INT64 -1 (10-byte varint)
        c2 b8 02 10  0a 01 69  10 03  30 fe ff ff ff ff ff ff ff ff 01     | i: INT32 -2 (sign-extended)
        c2 b8 02 07  0a 01 62  10 04  38 00                                | b: BOOL false
        c2 b8 02 0a  0a 01 73  10 05  42 03 c3 a9 21                       | s: STRING "é!" (utf-8)
        c2 b8 02 09  0a 01 79  10 06  4a 02 ff 00                          | y: BYTES ff 00
      `);
      expect(decodeKuraPayload(bytes).metrics).toEqual([
        metric.double('d', 1.5),
        metric.float('f', 1.5),
        metric.int64('l', -1),
        metric.int32('i', -2),
        metric.bool('b', false),
        metric.string('s', 'é!'),
        metric.bytes('y', Buffer.from([0xff, 0x00])),
      ]);
    });

    it('should decode a position with its optional fields', () => {
      const bytes = hex(`
        12 1d                              | position (field 2, len 29):
          09 00 00 00 00 00 c0 46 40       |   latitude 45.5
          11 00 00 00 00 00 60 52 c0       |   longitude -73.5
          19 00 00 00 00 00 00 f8 3f       |   altitude 1.5
          40 07                            |   satellites 7
      `);
      expect(decodeKuraPayload(bytes)).toEqual({
        position: { latitude: 45.5, longitude: -73.5, altitude: 1.5, satellites: 7 },
        metrics: [],
      });
    });

    it('should decode int64 values beyond 2^53 to the nearest number', () => {
      // 08 + varint of 2^63 - 1: eight ff bytes then 7f.
      const bytes = hex('08 ff ff ff ff ff ff ff ff 7f');
      expect(decodeKuraPayload(bytes).timestamp).toBe(2 ** 63);
    });

    it('should decode the largest safe integer exactly', () => {
      expect(decodeKuraPayload(hex('08 ff ff ff ff ff ff ff 0f')).timestamp).toBe(Number.MAX_SAFE_INTEGER);
    });

    it('should accept a plain Uint8Array and return Buffers for bytes', () => {
      const bytes = new Uint8Array(hex('ca b8 02 02 61 62'));
      const body = decodeKuraPayload(bytes).body;
      expect(Buffer.isBuffer(body)).toBe(true);
      expect(body).toEqual(Buffer.from('ab'));
    });

    it('should copy bytes out of the input so the input buffer can be reused', () => {
      const bytes = hex('ca b8 02 02 61 62');
      const payload = decodeKuraPayload(bytes);
      bytes.fill(0);
      expect(payload.body).toEqual(Buffer.from('ab'));
    });

    it('should let the last of two metrics with the same name win in lookups but keep both', () => {
      const bytes = hex(`
        c2 b8 02 07  0a 01 78  10 03  30 01   | x: INT32 1
        c2 b8 02 07  0a 01 78  10 03  30 02   | x: INT32 2
      `);
      expect(decodeKuraPayload(bytes).metrics.map((m) => m.value)).toEqual([1, 2]);
    });
  });

  describe('skipping unknown fields', () => {
    it('should skip unknown top-level fields of every wire type', () => {
      const bytes = hex(`
        38 96 01                           | field 7, varint 150 (an extension number)
        82 fa 01 03 61 62 63               | field 4000, len 3 "abc" (tag 4000<<3|2 = 32002 = 82 fa 01)
        1d 01 02 03 04                     | field 3, fixed32
        21 01 02 03 04 05 06 07 08         | field 4, fixed64
        2b 08 01 2c                        | field 5, group: start (5<<3|3), inner field 1 varint, end (5<<3|4)
        d2 b8 02 00                        | field 5002 (after body), len 0
        08 2a                              | timestamp 42
      `);
      expect(decodeKuraPayload(bytes)).toEqual({ timestamp: 42, metrics: [] });
    });

    it('should skip unknown fields inside a metric and inside a position', () => {
      const bytes = hex(`
        c2 b8 02 0b                        | metric, 11 bytes:
          0a 01 78  10 04                  |   name "x", type BOOL
          50 05                            |   field 10, varint 5 (unknown)
          38 01                            |   bool_value true
          6a 00                            |   field 13, len 0 (unknown)
        12 14                              | position, 20 bytes:
          09 00 00 00 00 00 c0 46 40       |   latitude 45.5
          50 05                            |   field 10, varint (unknown)
          11 00 00 00 00 00 60 52 c0       |   longitude -73.5
      `);
      expect(decodeKuraPayload(bytes)).toEqual({
        position: { latitude: 45.5, longitude: -73.5 },
        metrics: [metric.bool('x', true)],
      });
    });
  });

  describe('rejecting malformed input', () => {
    const full = hex(`
      08 2a                                | timestamp 42                      (bytes 0-1)
      12 12                                | position, 18 bytes                (bytes 2-21)
        09 00 00 00 00 00 c0 46 40
        11 00 00 00 00 00 60 52 c0
      c2 b8 02 0a  0a 01 73 10 05 42 03 61 62 63   | metric s = "abc"          (bytes 22-35)
      ca b8 02 02 01 02                    | body 01 02                        (bytes 36-41)
    `);
    const fieldEnds = [2, 22, 36, 42];

    it('should decode the full vector used for the truncation test', () => {
      expect(decodeKuraPayload(full)).toEqual({
        timestamp: 42,
        position: { latitude: 45.5, longitude: -73.5 },
        metrics: [metric.string('s', 'abc')],
        body: Buffer.from([1, 2]),
      });
    });

    it('should throw KuraPayloadError for every cut inside a field', () => {
      for (let length = 1; length < full.length; length++) {
        if (fieldEnds.includes(length)) continue;
        expect(() => decodeKuraPayload(full.subarray(0, length))).toThrow(KuraPayloadError);
      }
    });

    it('should throw when a string runs past the end of the buffer', () => {
      // The metric is complete (6 bytes) but its name claims 5 bytes with 4 left: protobufjs's Buffer
      // reader would clip the string to "name" instead of failing.
      expect(() => decodeKuraPayload(hex('c2 b8 02 06  0a 05 6e 61 6d 65'))).toThrow(/truncated string/);
    });

    it('should throw when a field inside a metric runs past the metric length', () => {
      const bytes = hex(`
        c2 b8 02 05  0a 01 78  10 05      | metric claims 5 bytes: name, type STRING
        42 01 61                          | string_value would belong to the metric but is outside it
      `);
      expect(() => decodeKuraPayload(bytes)).toThrow(/no value/);
      expect(() => decodeKuraPayload(hex('c2 b8 02 06  0a 01 78  10 05  42 01 61'))).toThrow(
        KuraPayloadError,
      );
    });

    it.each([
      ['timestamp sent length-delimited', '0a 01 00'],
      ['position sent as a varint', '10 01'],
      ['metric sent as a varint', 'c0 b8 02 01'],
      ['body sent as fixed32', 'cd b8 02 00 00 00 00'],
      ['metric name sent as a varint', 'c2 b8 02 06  08 01  10 04  38 01'],
      ['metric type sent as fixed32', 'c2 b8 02 0a  0a 01 78  15 04 00 00 00  38 01'],
      ['double_value sent as fixed32', 'c2 b8 02 0a  0a 01 78  10 00  1d 00 00 c0 3f'],
      ['latitude sent as a varint', '12 0b  08 01  11 00 00 00 00 00 60 52 c0'],
    ])('should throw on a wrong wire type: %s', (_title, vector) => {
      expect(() => decodeKuraPayload(hex(vector))).toThrow(/wire type/);
    });

    it.each([
      ['a metric without a name', 'c2 b8 02 04  10 04  38 01', /without a name/],
      ['a metric without a type', 'c2 b8 02 05  0a 01 78  38 01', /without a type/],
      ['a metric of an unknown type', 'c2 b8 02 07  0a 01 78  10 07  38 01', /unknown type 7/],
      ['a metric without a value', 'c2 b8 02 05  0a 01 78  10 04', /BOOL has no value/],
      [
        'a BOOL metric carrying a string',
        'c2 b8 02 08  0a 01 78  10 04  42 01 61',
        /BOOL carries string_value/,
      ],
      [
        'an INT32 metric with an extra double',
        'c2 b8 02 10  0a 01 78  10 03  30 01  19 00 00 00 00 00 00 f8 3f',
        /carries double_value/,
      ],
      ['a position without longitude', '12 09  09 00 00 00 00 00 c0 46 40', /latitude or longitude/],
      ['field number 0', '00 01', /field number 0/],
      ['a lone end-group', '2c', /end-group/],
      ['wire type 6', '3e 01', KuraPayloadError],
      ['wire type 7', '3f 01', KuraPayloadError],
      ['a varint longer than 10 bytes', '08 ff ff ff ff ff ff ff ff ff ff 01', /varint/],
      ['a metric longer than the payload', 'c2 b8 02 7f 0a 01 78', /truncated/],
    ])('should throw on %s', (_title, vector, error) => {
      expect(() => decodeKuraPayload(hex(vector))).toThrow(error);
    });

    it('should throw KuraPayloadError for a non-byte input', () => {
      expect(() => decodeKuraPayload('08 01' as unknown as Uint8Array)).toThrow(KuraPayloadError);
    });
  });

  describe('encoding', () => {
    it('should produce exactly the expected bytes for a simple payload', () => {
      const bytes = encodeKuraPayload({ timestamp: 1, metrics: [metric.bool('on', true)] });
      expect(toHex(bytes)).toBe(
        toHex(
          hex(`
            08 01                  | timestamp 1
            c2 b8 02 08            | metric, 8 bytes:
              0a 02 6f 6e          |   name "on"
              10 04                |   type BOOL
              38 01                |   bool_value true
          `),
        ),
      );
    });

    it('should write fields in field-number order with every optional part', () => {
      const bytes = encodeKuraPayload({
        body: Buffer.from([9]),
        metrics: [metric.int32('i', 1)],
        position: { latitude: 45.5, longitude: -73.5, status: 2 },
        timestamp: 42,
      });
      expect(toHex(bytes)).toBe(
        toHex(
          hex(`
            08 2a                                                    | timestamp 42
            12 14 09 00 00 00 00 00 c0 46 40 11 00 00 00 00 00 60 52 c0 48 02  | position
            c2 b8 02 07 0a 01 69 10 03 30 01                         | metric i INT32 1
            ca b8 02 01 09                                           | body 09
          `),
        ),
      );
    });

    it('should encode an empty payload as no bytes', () => {
      expect(encodeKuraPayload({ metrics: [] })).toEqual(Buffer.alloc(0));
    });

    it('should return a Buffer', () => {
      expect(Buffer.isBuffer(encodeKuraPayload({ metrics: [metric.string('a', 'b')] }))).toBe(true);
    });

    it.each<[string, KuraMetric]>([
      ['an INT64 that is not an integer', metric.int64('x', 1.5)],
      ['an INT64 beyond the safe range', metric.int64('x', 2 ** 53)],
      ['an INT32 beyond 32 bits', metric.int32('x', 2 ** 31)],
      ['a BOOL holding a string', { name: 'x', type: KuraMetricType.BOOL, value: 'true' }],
      ['a STRING holding a number', { name: 'x', type: KuraMetricType.STRING, value: 1 }],
      ['a BYTES holding a string', { name: 'x', type: KuraMetricType.BYTES, value: 'ab' }],
      ['a DOUBLE holding a boolean', { name: 'x', type: KuraMetricType.DOUBLE, value: true }],
      ['an unknown type', { name: 'x', type: 9 as KuraMetricType, value: 1 }],
      ['a missing name', { name: undefined as unknown as string, type: KuraMetricType.BOOL, value: true }],
    ])('should refuse to encode %s', (_title, m) => {
      expect(() => encodeKuraPayload({ metrics: [m] })).toThrow(KuraPayloadError);
    });

    it.each<[string, KuraPayload]>([
      ['a fractional timestamp', { timestamp: 1.5, metrics: [] }],
      ['a body that is not bytes', { metrics: [], body: 'x' as unknown as Buffer }],
      ['a position without longitude', { metrics: [], position: { latitude: 1 } as never }],
      [
        'a fractional satellite count',
        { metrics: [], position: { latitude: 1, longitude: 2, satellites: 1.5 } },
      ],
      ['a string altitude', { metrics: [], position: { latitude: 1, longitude: 2, altitude: '3' as never } }],
    ])('should refuse to encode %s', (_title, payload) => {
      expect(() => encodeKuraPayload(payload)).toThrow(KuraPayloadError);
    });
  });

  describe('roundtrip', () => {
    it.each<[string, KuraMetric]>([
      ['DOUBLE', metric.double('v', -1234.5678e100)],
      ['DOUBLE NaN', metric.double('v', NaN)],
      ['DOUBLE -Infinity', metric.double('v', -Infinity)],
      ['FLOAT', metric.float('v', 0.25)],
      ['INT64 max safe', metric.int64('v', Number.MAX_SAFE_INTEGER)],
      ['INT64 min safe', metric.int64('v', Number.MIN_SAFE_INTEGER)],
      ['INT64 zero', metric.int64('v', 0)],
      ['INT32 max', metric.int32('v', 2147483647)],
      ['INT32 min', metric.int32('v', -2147483648)],
      ['BOOL true', metric.bool('v', true)],
      ['BOOL false', metric.bool('v', false)],
      ['STRING', metric.string('v', 'ünïcødé ✓ 🚀')],
      ['STRING empty', metric.string('v', '')],
      ['BYTES', metric.bytes('v', Buffer.from([0, 1, 254, 255]))],
      ['BYTES empty', metric.bytes('v', Buffer.alloc(0))],
    ])('should roundtrip a %s metric', (_title, m) => {
      expect(decodeKuraPayload(encodeKuraPayload({ metrics: [m] }))).toEqual({ metrics: [m] });
    });

    it('should round a FLOAT to 32-bit precision', () => {
      const decoded = decodeKuraPayload(encodeKuraPayload({ metrics: [metric.float('v', 0.1)] }));
      expect(decoded.metrics[0].value).toBe(Math.fround(0.1));
    });

    it('should roundtrip a full position', () => {
      const position = {
        latitude: 46.0569,
        longitude: 14.5058,
        altitude: 295.2,
        precision: 3.5,
        heading: 270,
        speed: 12.25,
        timestamp: 1700000000123,
        satellites: 9,
        status: -1,
      };
      expect(decodeKuraPayload(encodeKuraPayload({ position, metrics: [] }))).toEqual({
        position,
        metrics: [],
      });
    });

    it('should roundtrip a negative timestamp and an empty body', () => {
      const payload = { timestamp: -5, metrics: [], body: Buffer.alloc(0) };
      expect(decodeKuraPayload(encodeKuraPayload(payload))).toEqual(payload);
    });

    it('should decode what protobufjs encodes from the schema, field for field', () => {
      const writer = KuraPayloadProto.encode(
        KuraPayloadProto.fromObject({
          timestamp: 7,
          metric: [
            { name: 'a', type: 'INT64', long_value: 123456789012 },
            { name: 'b', type: 'STRING', string_value: 'x' },
          ],
          body: Buffer.from('{}'),
        }),
        Writer.create(),
      );
      expect(decodeKuraPayload(writer.finish())).toEqual({
        timestamp: 7,
        metrics: [metric.int64('a', 123456789012), metric.string('b', 'x')],
        body: Buffer.from('{}'),
      });
    });
  });
});
