// Property tests of everything the cloud reads from a device or gateway: random payloads (a seeded
// generator, so a failure reproduces) with hostile values — NUL and other controls, huge and
// negative numbers, timestamps outside any calendar, wrong types, random bytes. Readers must never
// throw (except the codec's KuraPayloadError on bytes that are not a payload) and what they return
// must be storable: no NUL, no control characters in identifiers, bounded strings, sane instants.
import { readBirthCertificate, MAX_BIRTH_STRING_LENGTH } from './birth';
import { readGatewayReply } from './gateway';
import { decodeKuraPayload, encodeKuraPayload } from './kura-payload.codec';
import {
  isPrintable,
  KuraMetric,
  KuraMetricType,
  KuraPayload,
  KuraPayloadError,
  sentOnOf,
  storableText,
} from './kura-payload';
import { Metrics } from './metrics';
import { MAX_EXCEPTION_MESSAGE_LENGTH, readCommandReply } from './requests';
import { buildCommandReply } from './requests';
import { readStatusReport } from './vpn-status';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = [...Object.values(Metrics), 'display_name', 'other', ''];
const NASTY_STRINGS = [
  '',
  '\u0000',
  'a\u0000b',
  '\u0007\u001b[31m',
  '\u007f',
  '\ud800',
  'x'.repeat(5000),
  '004',
  '10.200.0.7',
  'connected',
];
const NASTY_NUMBERS = [
  0,
  -1,
  1.5,
  -8.64e15,
  8.64e15 + 1,
  2 ** 53,
  -(2 ** 63),
  Number.MAX_SAFE_INTEGER,
  2 ** 31,
  200,
  409,
  NaN,
  Infinity,
];

describe('device input (seeded property tests)', () => {
  const random = mulberry32(0x5eed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)];
  const text = (): string =>
    random() < 0.5
      ? pick(NASTY_STRINGS)
      : String.fromCharCode(
          ...Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 0x80)),
        );

  function randomMetric(): KuraMetric {
    const name = pick(NAMES);
    const type = pick([0, 1, 2, 3, 4, 5, 6] as KuraMetricType[]);
    switch (type) {
      case KuraMetricType.BOOL:
        return { name, type, value: random() < 0.5 };
      case KuraMetricType.STRING:
        return { name, type, value: text() };
      case KuraMetricType.BYTES:
        return { name, type, value: Buffer.from(text(), 'latin1') };
      case KuraMetricType.INT32:
        return { name, type, value: Math.trunc(random() * 2 ** 31) * (random() < 0.5 ? -1 : 1) };
      case KuraMetricType.INT64:
        return { name, type, value: Math.trunc(pick(NASTY_NUMBERS.filter(Number.isFinite))) };
      default:
        return { name, type, value: pick(NASTY_NUMBERS) };
    }
  }

  /** A valid status reply with one metric replaced by a hostile one: readers meet near-valid input. */
  function nearValid(): KuraMetric[] {
    const valid = buildCommandReply({
      code: 500,
      exceptionMessage: text(),
      status: {
        connected: true,
        ipAddress: '10.200.0.7',
        status: 'connected',
        statusCode: '004',
        bootId: text() || 'b',
        seq: 3,
      },
    }).metrics;
    const i = Math.floor(random() * valid.length);
    const hostile = randomMetric();
    return valid.map((m, j) => (j === i ? { ...hostile, name: m.name } : m));
  }

  function randomPayload(): KuraPayload {
    const metrics =
      random() < 0.5 ? nearValid() : Array.from({ length: Math.floor(random() * 12) }, randomMetric);
    const payload: KuraPayload = { metrics };
    if (random() < 0.8) payload.timestamp = Math.trunc(pick(NASTY_NUMBERS.filter(Number.isFinite)));
    if (random() < 0.3) payload.body = Buffer.from(text(), 'utf8');
    return payload;
  }

  const hasNul = (s: string | undefined) => s !== undefined && s.includes('\u0000');

  it('should read 3,000 random payloads without throwing, and return only storable values', () => {
    let statuses = 0;
    for (let i = 0; i < 3000; i++) {
      // Through the codec as a device would send it (a FLOAT rounds, an INT64 may lose precision).
      let decoded: KuraPayload;
      try {
        decoded = decodeKuraPayload(encodeKuraPayload(randomPayload()));
      } catch (err) {
        expect(err).toBeInstanceOf(KuraPayloadError);
        continue;
      }
      const status = readStatusReport(decoded);
      if (status) {
        statuses++;
        expect(isPrintable(status.bootId)).toBe(true);
        expect(Number.isSafeInteger(status.seq) && status.seq >= 0).toBe(true);
      }
      const reply = readCommandReply(decoded);
      if (reply?.exceptionMessage !== undefined) {
        expect(hasNul(reply.exceptionMessage)).toBe(false);
        expect(reply.exceptionMessage.length).toBeLessThanOrEqual(MAX_EXCEPTION_MESSAGE_LENGTH);
      }
      const gatewayReply = readGatewayReply(decoded);
      if (gatewayReply)
        expect(Number.isSafeInteger(gatewayReply.serial) && gatewayReply.serial >= 0).toBe(true);
      const birth = readBirthCertificate(decoded);
      for (const value of [
        birth.displayName,
        birth.modelId,
        birth.serialNumber,
        birth.firmwareVersion,
        birth.connectionIp,
      ]) {
        expect(hasNul(value)).toBe(false);
        expect((value ?? '').length).toBeLessThanOrEqual(MAX_BIRTH_STRING_LENGTH);
      }
      for (const id of birth.applicationIds) expect(hasNul(id)).toBe(false);
      const sentOn = sentOnOf(decoded);
      if (sentOn) {
        expect(sentOn.getTime()).toBeGreaterThanOrEqual(0);
        expect(sentOn.getUTCFullYear()).toBeLessThanOrEqual(9999);
      }
    }
    // The near-valid half really reaches the status checks.
    expect(statuses).toBeGreaterThan(100);
  });

  it('should refuse or read 3,000 random byte strings, never crash', () => {
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(
        Array.from({ length: Math.floor(random() * 64) }, () => Math.floor(random() * 256)),
      );
      try {
        const decoded = decodeKuraPayload(bytes);
        readStatusReport(decoded);
        readCommandReply(decoded);
        readBirthCertificate(decoded);
        sentOnOf(decoded);
      } catch (err) {
        expect(err).toBeInstanceOf(KuraPayloadError);
      }
    }
  });

  it('should replace control characters but keep text, tabs and newlines', () => {
    expect(storableText('a\u0000b\u0007c\u007fd\te\nf')).toBe('a\ufffdb\ufffdc\ufffdd\te\nf');
    expect(sentOnOf({ metrics: [], timestamp: -8.64e15 })).toBeNull();
    expect(sentOnOf({ metrics: [], timestamp: 1_700_000_000_000 })?.toISOString()).toBe(
      '2023-11-14T22:13:20.000Z',
    );
  });
});
