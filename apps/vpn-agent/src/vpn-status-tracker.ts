import { randomUUID } from 'node:crypto';

import { DISCONNECTED_IP, StatusCodes, VpnStatus, VpnStatusReport } from '@app/protocol';

export type VpnState = Pick<VpnStatusReport, 'connected' | 'ipAddress' | 'status' | 'statusCode'>;

export const INITIAL_STATE: VpnState = {
  connected: false,
  ipAddress: DISCONNECTED_IP,
  status: 'idle' satisfies VpnStatus,
  statusCode: StatusCodes.NOT_APPLICABLE,
};

/**
 * The agent's VPN state plus the ordering the cloud relies on: a boot id that is new for every
 * process start and a sequence number that grows with every report of one boot, so the cloud can
 * drop a report older than one it already has.
 */
export class VpnStatusTracker {
  private report: VpnStatusReport;

  constructor(readonly bootId: string = randomUUID()) {
    this.report = { ...INITIAL_STATE, bootId, seq: 0 };
  }

  /** The latest report (seq 0 until the first one is made). */
  get current(): VpnStatusReport {
    return { ...this.report };
  }

  /** A new report when the state changed, else undefined (nothing to publish). */
  update(state: VpnState): VpnStatusReport | undefined {
    const r = this.report;
    const same =
      r.connected === state.connected &&
      r.ipAddress === state.ipAddress &&
      r.status === state.status &&
      r.statusCode === state.statusCode;
    return same ? undefined : this.next(state);
  }

  /** A new report of the unchanged state, e.g. after each BIRTH, in case the cloud missed the last one. */
  repeat(): VpnStatusReport {
    return this.next(this.report);
  }

  private next(state: VpnState): VpnStatusReport {
    const { connected, ipAddress, status, statusCode } = state;
    this.report = { connected, ipAddress, status, statusCode, bootId: this.bootId, seq: this.report.seq + 1 };
    return { ...this.report };
  }
}
