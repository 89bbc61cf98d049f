import { DISCONNECTED_IP, StatusCodes } from '@app/protocol';

import { INITIAL_STATE, VpnStatusTracker } from './vpn-status-tracker';

const connected = {
  connected: true,
  ipAddress: '10.200.0.7',
  status: 'connected' as const,
  statusCode: '004',
};

describe('VpnStatusTracker', () => {
  it('should start idle, disconnected, at seq 0 with a random UUID boot id', () => {
    const a = new VpnStatusTracker();
    const b = new VpnStatusTracker();
    expect(a.current).toEqual({ ...INITIAL_STATE, bootId: a.bootId, seq: 0 });
    expect(a.current.ipAddress).toBe(DISCONNECTED_IP);
    expect(a.current.statusCode).toBe(StatusCodes.NOT_APPLICABLE);
    expect(a.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.bootId).not.toBe(b.bootId);
  });

  it('should make a report with the next seq on every change, and none when nothing changed', () => {
    const tracker = new VpnStatusTracker('boot-1');
    const first = tracker.update({ ...INITIAL_STATE, status: 'connecting', statusCode: StatusCodes.PENDING });
    const second = tracker.update(connected);
    expect(first).toMatchObject({ status: 'connecting', bootId: 'boot-1', seq: 1 });
    expect(second).toEqual({ ...connected, bootId: 'boot-1', seq: 2 });
    expect(tracker.update({ ...connected })).toBeUndefined();
    expect(tracker.current.seq).toBe(2);
  });

  it('should give a repeated report a new seq, so the cloud accepts it after a reconnect', () => {
    const tracker = new VpnStatusTracker('boot-1');
    tracker.update(connected);
    expect(tracker.repeat()).toEqual({ ...connected, bootId: 'boot-1', seq: 2 });
    expect(tracker.repeat().seq).toBe(3);
  });

  it('should not let callers change its state through a returned report', () => {
    const tracker = new VpnStatusTracker('boot-1');
    const report = tracker.update(connected);
    if (report) report.seq = 99;
    tracker.current.connected = false;
    expect(tracker.current).toMatchObject({ connected: true, seq: 1 });
  });
});
