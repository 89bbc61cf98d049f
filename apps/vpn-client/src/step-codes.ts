// Which three-digit status code a failure of each connect step gets, and a message the engineer
// can act on: one table, so the portal sees the same code for the same cause whatever the step.
import { StatusCodes } from '@app/protocol';

import { CloudError } from './cloud-client';
import type { StepName } from './status';
import { TunnelFailure, WireguardTunnelError } from '@app/edge';

export interface StepFailure {
  step: StepName;
  code: string;
  message: string;
}

/** A failure the flow itself detected (bad session, ping timeout); it already knows its code. */
export class StepError extends Error {
  override readonly name = 'StepError';

  constructor(
    readonly code: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Codes the cloud's answers map to, before looking at the step. */
function cloudCommonCode(err: CloudError): StepFailureCode | undefined {
  if (err.unreachable) {
    return {
      code: StatusCodes.CLOUD_UNREACHABLE,
      hint: 'check --api and the network connection to the cloud',
    };
  }
  switch (err.httpStatus) {
    case 401:
      return {
        code: StatusCodes.SIGN_IN_FAILED,
        hint: 'the access token was refused or has expired: sign in again',
      };
    case 403:
      return { code: StatusCodes.ACCESS_DENIED, hint: 'your account may not open a VPN to this device' };
    case 429:
      return { code: StatusCodes.SIGN_IN_FAILED, hint: 'too many sign-in attempts: wait a few minutes' };
  }
  return undefined;
}

interface StepFailureCode {
  code: string;
  hint: string;
}

function deviceVpnCode(err: CloudError): StepFailureCode {
  switch (err.httpStatus) {
    case 400:
    case 404:
      return {
        code: StatusCodes.DEVICE_NOT_FOUND,
        hint: 'check the device (agentId) and company (companyId)',
      };
    case 409:
      if (err.result === 'DEVICE_NOT_CONNECTED')
        return {
          code: StatusCodes.DEVICE_OFFLINE,
          hint: 'the device is not connected to the cloud: check its power and network',
        };
      if (err.result === 'NO_GATEWAY')
        return {
          code: StatusCodes.NO_GATEWAY,
          hint: 'no VPN gateway serves this device: ask the cloud administrator',
        };
      return { code: StatusCodes.AGENT_BUSY, hint: 'the device is busy with another VPN command: try again' };
    case 503:
      if (err.result === 'GATEWAY_UNAVAILABLE')
        return {
          code: StatusCodes.GATEWAY_UNAVAILABLE,
          hint: "the device's VPN gateway is unavailable: try again later",
        };
      return { code: StatusCodes.CLOUD_UNREACHABLE, hint: 'the cloud is unavailable: try again later' };
    case 502:
    case 504:
      return { code: StatusCodes.DEVICE_VPN_FAILED, hint: 'the device could not bring its VPN up' };
  }
  return { code: StatusCodes.FAILED, hint: 'unexpected answer from the cloud' };
}

function sessionCode(err: CloudError): StepFailureCode {
  switch (err.httpStatus) {
    case 404:
      return {
        code: StatusCodes.DEVICE_NOT_FOUND,
        hint: 'check the device (agentId) and company (companyId)',
      };
    case 409:
      if (err.result === 'DEVICE_NOT_CONNECTED')
        return {
          code: StatusCodes.DEVICE_OFFLINE,
          hint: 'the device is not connected to the cloud: check its power and network',
        };
      if (err.result === 'VPN_NOT_CONNECTED')
        return {
          code: StatusCodes.DEVICE_VPN_FAILED,
          hint: "the device's VPN went down meanwhile: connect again",
        };
      if (err.result === 'NO_GATEWAY')
        return {
          code: StatusCodes.NO_GATEWAY,
          hint: 'no VPN gateway serves this device: ask the cloud administrator',
        };
      return { code: StatusCodes.SESSION_REFUSED, hint: 'the cloud refused the VPN session' };
    case 503:
      return {
        code: StatusCodes.GATEWAY_UNAVAILABLE,
        hint: "the device's VPN gateway is unavailable: try again later",
      };
    case 400:
    case 507:
      return { code: StatusCodes.SESSION_REFUSED, hint: 'the cloud refused the VPN session' };
  }
  return { code: StatusCodes.FAILED, hint: 'unexpected answer from the cloud' };
}

const TUNNEL_CODES: Readonly<Record<TunnelFailure, string>> = {
  setup: StatusCodes.INTERFACE_SETUP_FAILED,
  endpoint: StatusCodes.PEER_UNREACHABLE,
  handshake: StatusCodes.HANDSHAKE_TIMEOUT,
  teardown: StatusCodes.TEARDOWN_FAILED,
};

const TUNNEL_HINTS: Readonly<Record<TunnelFailure, string>> = {
  setup: 'the tunnel interface could not be set up',
  endpoint: 'the VPN gateway address could not be used',
  handshake: 'the VPN gateway did not answer: check that outgoing UDP to it is not blocked',
  teardown: 'the tunnel interface could not be removed',
};

/** The code of the step that failed, the cause in words, and what to do about it. */
export function classifyFailure(step: StepName, err: unknown): StepFailure {
  const cause = err instanceof Error ? err.message : String(err);
  if (err instanceof StepError) return { step, code: err.code, message: cause };
  if (err instanceof CloudError) {
    const common = cloudCommonCode(err);
    const { code, hint } =
      common ??
      (step === 'device-vpn' ? deviceVpnCode(err) : step === 'session' ? sessionCode(err) : signInCode(err));
    return { step, code, message: `${hint} (${cause})` };
  }
  if (err instanceof WireguardTunnelError) {
    return {
      step,
      code: TUNNEL_CODES[err.failure],
      message: `${TUNNEL_HINTS[err.failure]}${permissionHint(cause)} (${cause})`,
    };
  }
  const fallback: Partial<Record<StepName, string>> = {
    interface: StatusCodes.INTERFACE_SETUP_FAILED,
    handshake: StatusCodes.HANDSHAKE_TIMEOUT,
    'device-ping': StatusCodes.DEVICE_UNREACHABLE,
    tunnel: StatusCodes.TUNNEL_LOST,
  };
  return { step, code: fallback[step] ?? StatusCodes.FAILED, message: `${cause}${permissionHint(cause)}` };
}

function signInCode(err: CloudError): StepFailureCode {
  if (err.httpStatus !== undefined && err.httpStatus >= 500)
    return { code: StatusCodes.CLOUD_UNREACHABLE, hint: 'the cloud is unavailable: try again later' };
  return { code: StatusCodes.SIGN_IN_FAILED, hint: 'sign-in to the cloud failed' };
}

function permissionHint(message: string): string {
  if (/Operation not permitted|Permission denied/i.test(message))
    return ': the VPN client needs root (CAP_NET_ADMIN) to create interfaces';
  if (/ENOENT/.test(message)) return ': install wireguard-go, wireguard-tools and iproute2';
  return '';
}
