import {
  KuraMetricType,
  KuraPayload,
  getBoolMetric,
  getInt64Metric,
  getMetric,
  getNumberMetric,
  getStringMetric,
  metric,
} from './kura-payload';

describe('metric lookups', () => {
  const payload: KuraPayload = {
    metrics: [
      metric.string('s', 'text'),
      metric.bool('b', true),
      metric.double('d', 1.5),
      metric.float('f', 0.5),
      metric.int64('l', 7),
      metric.int32('i', -3),
      metric.bytes('y', Buffer.from([1])),
      metric.int32('dup', 1),
      metric.int32('dup', 2),
    ],
  };

  it('should build metrics with the matching type', () => {
    expect(metric.int64('n', 5)).toEqual({ name: 'n', type: KuraMetricType.INT64, value: 5 });
    expect(metric.bytes('n', Buffer.alloc(0)).type).toBe(KuraMetricType.BYTES);
  });

  it('should return any value by name, or undefined when missing', () => {
    expect(getMetric(payload, 'y')).toEqual(Buffer.from([1]));
    expect(getMetric(payload, 'missing')).toBeUndefined();
  });

  it('should let the last metric of a repeated name win, as Kura does', () => {
    expect(getMetric(payload, 'dup')).toBe(2);
  });

  it('should return typed values only for the matching type', () => {
    expect(getStringMetric(payload, 's')).toBe('text');
    expect(getStringMetric(payload, 'b')).toBeUndefined();
    expect(getBoolMetric(payload, 'b')).toBe(true);
    expect(getBoolMetric(payload, 's')).toBeUndefined();
    expect(getInt64Metric(payload, 'l')).toBe(7);
    expect(getInt64Metric(payload, 'i')).toBeUndefined();
  });

  it('should read all four numeric types as numbers and nothing else', () => {
    expect(['d', 'f', 'l', 'i'].map((n) => getNumberMetric(payload, n))).toEqual([1.5, 0.5, 7, -3]);
    expect(['s', 'b', 'y', 'missing'].map((n) => getNumberMetric(payload, n))).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('should treat a hand-built metric whose value contradicts its type as missing', () => {
    const liar: KuraPayload = { metrics: [{ name: 'x', type: KuraMetricType.STRING, value: 1 }] };
    expect(getStringMetric(liar, 'x')).toBeUndefined();
    expect(getNumberMetric(liar, 'x')).toBeUndefined();
  });
});
