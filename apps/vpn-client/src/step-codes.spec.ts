// Step codes: the same cause gets the same three-digit code, with a message a person can act on.
import { StatusCodes } from '@app/protocol';

import { CloudError, errorFromResponse } from './cloud-client';
import { StepError, classifyFailure } from './step-codes';
import { WireguardTunnelError } from '@app/edge';

describe('classifyFailure', () => {
  it('should map an unreachable cloud to 110 in any step, with what to check', () => {
    const unreachable = new CloudError(
      'GET /v1/authentication/info: ECONNREFUSED',
      undefined,
      undefined,
      undefined,
    );
    for (const step of ['sign-in', 'device-vpn', 'session'] as const) {
      const failure = classifyFailure(step, unreachable);
      expect(failure.code).toBe(StatusCodes.CLOUD_UNREACHABLE);
      expect(failure.message).toMatch(/check --api.*ECONNREFUSED/);
    }
  });

  it('should map sign-in answers to the 1XY group', () => {
    expect(classifyFailure('sign-in', new CloudError('x', 401, 'AUTH_FAILED', '')).code).toBe('120');
    expect(classifyFailure('sign-in', new CloudError('x', 429, 'RATE_LIMITED', '')).code).toBe('120');
    expect(classifyFailure('sign-in', new CloudError('x', 500, 'INTERNAL_ERROR', '')).code).toBe('110');
    expect(classifyFailure('device-vpn', new CloudError('x', 403, 'FORBIDDEN', '')).code).toBe('130');
  });

  it('should map a busy device to 230 and an unexpected answer to 010', () => {
    expect(classifyFailure('device-vpn', new CloudError('x', 409, 'CONFLICT', '')).code).toBe('230');
    expect(classifyFailure('device-vpn', new CloudError('x', 418, undefined, '')).code).toBe('010');
  });

  it('should map tunnel failures to the 7XY group', () => {
    const cases = [
      ['setup', '710'],
      ['endpoint', '730'],
      ['handshake', '720'],
      ['teardown', '740'],
    ] as const;
    for (const [failure, code] of cases) {
      expect(classifyFailure('interface', new WireguardTunnelError(failure, 'boom')).code).toBe(code);
    }
    expect(
      classifyFailure('interface', new WireguardTunnelError('setup', 'spawn wireguard-go ENOENT')).message,
    ).toMatch(/install wireguard-go/);
  });

  it('should keep the code of a StepError and fall back by step for anything else', () => {
    expect(classifyFailure('session', new StepError('310', 'bad')).code).toBe('310');
    expect(classifyFailure('handshake', new Error('wg show: failed')).code).toBe('720');
    expect(classifyFailure('device-ping', new Error('spawn ping ENOENT')).code).toBe('820');
  });
});

describe('errorFromResponse', () => {
  it("should parse the cloud's error body", () => {
    const err = errorFromResponse(
      'POST /v1/x',
      409,
      JSON.stringify({ result: 'DEVICE_NOT_CONNECTED', error: 'Device not connected', details: 'MISSING' }),
    );
    expect(err).toMatchObject({
      httpStatus: 409,
      result: 'DEVICE_NOT_CONNECTED',
      reason: 'Device not connected: MISSING',
    });
    expect(err.message).toBe('POST /v1/x: 409 DEVICE_NOT_CONNECTED (Device not connected: MISSING)');
    expect(err.unreachable).toBe(false);
  });

  it('should quote (shortened) a body that is not the documented one', () => {
    const err = errorFromResponse('GET /v1/x', 502, `<html>${'x'.repeat(500)}</html>`);
    expect(err.result).toBeUndefined();
    expect(err.reason?.length).toBe(200);
  });
});
