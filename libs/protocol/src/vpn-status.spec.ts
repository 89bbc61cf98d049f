import { KuraMetric, KuraPayload, metric } from './kura-payload';
import { decodeKuraPayload, encodeKuraPayload } from './kura-payload.codec';
import { Metrics } from './metrics';
import {
  DISCONNECTED_IP,
  StatusCodes,
  VPN_STATUSES,
  VpnStatusReport,
  describeStatusCode,
  isErrorStatusCode,
  readStatusReport,
  statusMetrics,
} from './vpn-status';

function createReport(overrides: Partial<VpnStatusReport> = {}): VpnStatusReport {
  return {
    connected: true,
    ipAddress: '10.200.0.7',
    status: 'connected',
    statusCode: StatusCodes.ACTIVE,
    bootId: 'b1f0c6a2',
    seq: 3,
    ...overrides,
  };
}

/** The report's metrics with one of them replaced (or removed when `replacement` is null). */
function withMetric(name: string, replacement: KuraMetric | null): KuraPayload {
  const metrics = statusMetrics(createReport()).filter((m) => m.name !== name);
  return { metrics: replacement === null ? metrics : [...metrics, replacement] };
}

describe('VPN status', () => {
  describe('status codes', () => {
    it('should list the five statuses', () => {
      expect(VPN_STATUSES).toEqual(['idle', 'connecting', 'connected', 'disconnecting', 'error']);
    });

    it("should use three digits for every code, errors from 010 up in IXON's step groups", () => {
      for (const code of Object.values(StatusCodes)) expect(code).toMatch(/^[0-9]{3}$/);
      const errors = Object.values(StatusCodes).filter(isErrorStatusCode);
      expect(errors[0]).toBe('010');
      // After 010, only the groups of the table: 1XY sign-in, 2XY agent, 3XY configuration, 7XY tunnel, 8XY/9XY routes.
      expect(new Set(errors.slice(1).map((c) => c[0]))).toEqual(new Set(['1', '2', '3', '7', '8']));
      expect(new Set(errors).size).toBe(errors.length);
    });

    it.each(['000', '001', '002', '003', '004', '009', '10', '0100', 'abc', '', ' 10'])(
      'should not call %j an error code',
      (code) => {
        expect(isErrorStatusCode(code)).toBe(false);
      },
    );

    it('should describe known, unknown and invalid codes', () => {
      expect(describeStatusCode('004')).toBe('active');
      expect(describeStatusCode('720')).toBe('handshake timed out');
      expect(describeStatusCode('799')).toBe('tunnel error');
      expect(describeStatusCode('399')).toBe('VPN configuration error');
      expect(describeStatusCode('950')).toBe('route error');
      expect(describeStatusCode('450')).toBe('step 4 error');
      expect(describeStatusCode('099')).toBe('error');
      expect(describeStatusCode('007')).toBe('unknown state');
      expect(describeStatusCode('x')).toBe('invalid status code');
      expect(describeStatusCode('__proto__')).toBe('invalid status code');
    });
  });

  describe('statusMetrics / readStatusReport', () => {
    it('should write the six status metrics with their types', () => {
      expect(statusMetrics(createReport())).toEqual([
        metric.bool('vpn.connected', true),
        metric.string('vpn.ip_address', '10.200.0.7'),
        metric.string('vpn.status', 'connected'),
        metric.string('vpn.status_code', '004'),
        metric.string('vpn.boot_id', 'b1f0c6a2'),
        metric.int64('vpn.seq', 3),
      ]);
    });

    it('should roundtrip a report through the codec', () => {
      const report = createReport({ connected: false, ipAddress: DISCONNECTED_IP, status: 'idle', seq: 0 });
      const payload = decodeKuraPayload(encodeKuraPayload({ metrics: statusMetrics(report) }));
      expect(readStatusReport(payload)).toEqual(report);
    });

    it('should accept an IPv6 address', () => {
      const payload = withMetric(Metrics.VPN_IP_ADDRESS, metric.string(Metrics.VPN_IP_ADDRESS, 'fd00::7'));
      expect(readStatusReport(payload)?.ipAddress).toBe('fd00::7');
    });

    it('should ignore unrelated metrics', () => {
      const payload = { metrics: [metric.string('other', 'x'), ...statusMetrics(createReport())] };
      expect(readStatusReport(payload)).toEqual(createReport());
    });

    it.each(
      Object.values(Metrics).filter(
        (n) => n.startsWith('vpn.') && n !== Metrics.VPN_PUBLIC_KEY && n !== Metrics.VPN_LISTEN_PORT,
      ),
    )('should return null without %s', (name) => {
      expect(readStatusReport(withMetric(name, null))).toBeNull();
    });

    it.each<[string, KuraMetric]>([
      ['connected as a string', metric.string(Metrics.VPN_CONNECTED, 'true')],
      ['an ip address that is not an address', metric.string(Metrics.VPN_IP_ADDRESS, '10.200.0.256')],
      ['an ip address with a prefix', metric.string(Metrics.VPN_IP_ADDRESS, '10.200.0.7/16')],
      ['an ip address with a zone', metric.string(Metrics.VPN_IP_ADDRESS, 'fe80::1%eth0')],
      ['an over-long ip address', metric.string(Metrics.VPN_IP_ADDRESS, `${'0:'.repeat(40)}:1`)],
      ['a status outside the enum', metric.string(Metrics.VPN_STATUS, 'CONNECTED')],
      ['a two-digit status code', metric.string(Metrics.VPN_STATUS_CODE, '04')],
      ['a numeric status code', metric.int32(Metrics.VPN_STATUS_CODE, 4)],
      ['an empty boot id', metric.string(Metrics.VPN_BOOT_ID, '')],
      ['a 65-character boot id', metric.string(Metrics.VPN_BOOT_ID, 'b'.repeat(65))],
      ['a negative seq', metric.int64(Metrics.VPN_SEQ, -1)],
      ['a seq beyond the safe range', metric.int64(Metrics.VPN_SEQ, 2 ** 60)],
      ['a seq sent as INT32', metric.int32(Metrics.VPN_SEQ, 3)],
      ['a seq sent as DOUBLE', metric.double(Metrics.VPN_SEQ, 3.5)],
    ])('should return null for %s', (_title, replacement) => {
      expect(readStatusReport(withMetric(replacement.name, replacement))).toBeNull();
    });

    it('should accept a 64-character boot id', () => {
      const bootId = 'b'.repeat(64);
      expect(
        readStatusReport(withMetric(Metrics.VPN_BOOT_ID, metric.string(Metrics.VPN_BOOT_ID, bootId)))?.bootId,
      ).toBe(bootId);
    });
  });
});
