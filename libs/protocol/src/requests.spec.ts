import { KuraMetricType, KuraPayload, metric } from './kura-payload';
import { decodeKuraPayload, encodeKuraPayload } from './kura-payload.codec';
import { Metrics } from './metrics';
import {
  MAX_EXCEPTION_MESSAGE_LENGTH,
  ResponseCodes,
  buildCommandReply,
  buildCommandRequest,
  readCommandReply,
  readCommandRequest,
} from './requests';
import { StatusCodes, VpnStatusReport } from './vpn-status';

const REQUEST_ID = '0f8e4a52-7b1c-4e0a-9d3e-2c6b5a4f1e77';

function createStatus(): VpnStatusReport {
  return {
    connected: false,
    ipAddress: '0.0.0.0',
    status: 'error',
    statusCode: StatusCodes.HANDSHAKE_TIMEOUT,
    bootId: 'boot-1',
    seq: 12,
  };
}

function wire(payload: KuraPayload): KuraPayload {
  return decodeKuraPayload(encodeKuraPayload(payload));
}

describe('command requests and replies', () => {
  describe('requests', () => {
    it('should carry request.id and requester.client.id as STRING metrics and a timestamp', () => {
      const before = Date.now();
      const payload = buildCommandRequest({ requestId: REQUEST_ID, requesterClientId: 'cloud-api-1' });
      expect(payload.metrics).toEqual([
        { name: 'request.id', type: KuraMetricType.STRING, value: REQUEST_ID },
        { name: 'requester.client.id', type: KuraMetricType.STRING, value: 'cloud-api-1' },
      ]);
      expect(payload.timestamp).toBeGreaterThanOrEqual(before);
      expect(payload.body).toBeUndefined();
    });

    it('should roundtrip a request with a body through the codec', () => {
      const request = {
        requestId: REQUEST_ID,
        requesterClientId: 'cloud-api-1',
        body: Buffer.from('{"a":1}'),
      };
      expect(readCommandRequest(wire(buildCommandRequest(request)))).toEqual(request);
    });

    it.each<[string, KuraPayload]>([
      ['without request.id', { metrics: [metric.string(Metrics.REQUESTER_CLIENT_ID, 'cloud')] }],
      ['without requester.client.id', { metrics: [metric.string(Metrics.REQUEST_ID, 'r1')] }],
      [
        'with a numeric request.id',
        {
          metrics: [metric.int32(Metrics.REQUEST_ID, 1), metric.string(Metrics.REQUESTER_CLIENT_ID, 'cloud')],
        },
      ],
      [
        'with a request.id that would add topic levels',
        {
          metrics: [
            metric.string(Metrics.REQUEST_ID, 'r/1'),
            metric.string(Metrics.REQUESTER_CLIENT_ID, 'cloud'),
          ],
        },
      ],
      [
        'with a wildcard requester',
        {
          metrics: [metric.string(Metrics.REQUEST_ID, 'r1'), metric.string(Metrics.REQUESTER_CLIENT_ID, '#')],
        },
      ],
      [
        'with an empty requester',
        {
          metrics: [metric.string(Metrics.REQUEST_ID, 'r1'), metric.string(Metrics.REQUESTER_CLIENT_ID, '')],
        },
      ],
    ])('should return null for a request %s', (_title, payload) => {
      expect(readCommandRequest(payload)).toBeNull();
    });
  });

  describe('replies', () => {
    it('should carry response.code as INT32', () => {
      const payload = buildCommandReply({ code: ResponseCodes.OK });
      expect(payload.metrics).toEqual([metric.int32('response.code', 200)]);
      expect(typeof payload.timestamp).toBe('number');
    });

    it('should roundtrip an error reply with message and status', () => {
      const reply = {
        code: ResponseCodes.INTERNAL_ERROR,
        exceptionMessage: 'handshake timed out',
        status: createStatus(),
      };
      const payload = buildCommandReply(reply);
      expect(payload.metrics.map((m) => m.name)).toEqual([
        'response.code',
        'response.exception.message',
        'vpn.connected',
        'vpn.ip_address',
        'vpn.status',
        'vpn.status_code',
        'vpn.boot_id',
        'vpn.seq',
      ]);
      expect(readCommandReply(wire(payload))).toEqual(reply);
    });

    it('should read a bare reply without message or status', () => {
      expect(readCommandReply(wire(buildCommandReply({ code: 404 })))).toEqual({ code: 404 });
    });

    it.each<[string, KuraPayload]>([
      ['without response.code', { metrics: [metric.string(Metrics.RESPONSE_EXCEPTION_MESSAGE, 'x')] }],
      ['with response.code as a STRING', { metrics: [metric.string(Metrics.RESPONSE_CODE, '200')] }],
      ['with response.code as INT64', { metrics: [metric.int64(Metrics.RESPONSE_CODE, 200)] }],
    ])('should return null for a reply %s', (_title, payload) => {
      expect(readCommandReply(payload)).toBeNull();
    });

    it('should drop a mistyped exception message and an incomplete status', () => {
      const payload: KuraPayload = {
        metrics: [
          metric.int32(Metrics.RESPONSE_CODE, 400),
          metric.int32(Metrics.RESPONSE_EXCEPTION_MESSAGE, 1),
          metric.bool(Metrics.VPN_CONNECTED, true),
        ],
      };
      expect(readCommandReply(payload)).toEqual({ code: 400 });
    });

    it('should cut an over-long exception message', () => {
      const payload = buildCommandReply({ code: 500, exceptionMessage: 'x'.repeat(5000) });
      expect(readCommandReply(payload)?.exceptionMessage).toHaveLength(MAX_EXCEPTION_MESSAGE_LENGTH);
    });
  });
});
