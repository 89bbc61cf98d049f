// The status object of the VPN Client API (GET /status and every WebSocket push): the overall
// state, the request being served, and one entry per step of the connect flow with its code.
import { StatusCodes, VpnStatus } from '@app/protocol';

/** The steps of a connect, in order; `tunnel` is the established tunnel itself (active, lost). */
export const STEP_NAMES = [
  'sign-in',
  'device-vpn',
  'session',
  'interface',
  'handshake',
  'device-ping',
  'tunnel',
] as const;
export type StepName = (typeof STEP_NAMES)[number];

export interface Step {
  name: StepName;
  /** 000 not reached, 001 skipped, 002 running, 003 done, 004 active (tunnel), else the error. */
  code: string;
  message?: string;
}

export interface ActiveRequest {
  agentId: string;
  companyId: string;
  controllerIdentifier: string;
  /** ISO 8601. */
  startedOn: string;
}

export interface ClientStatus {
  status: VpnStatus;
  /** `""` when no request is being served (IXON's convention). */
  activeRequest: ActiveRequest | '';
  statusCode: string;
  steps: Step[];
  /** The client's own address in the tunnel, while connected. */
  tunnelAddress?: string;
  /** The device's address, reachable through the tunnel, while connected. */
  deviceAddress?: string;
}

export function initialSteps(): Step[] {
  return STEP_NAMES.map((name) => ({ name, code: StatusCodes.UNKNOWN }));
}

export function idleStatus(): ClientStatus {
  return { status: 'idle', activeRequest: '', statusCode: StatusCodes.UNKNOWN, steps: [] };
}
