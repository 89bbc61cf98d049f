// What goes into peer reports: changed peers only, first handshakes at once, at most 500 per message.
import { randomBytes } from 'node:crypto';

import type { UapiPeer } from '@app/edge';

import { PeerReportTracker, chunkReports } from './peer-reports';

const uapiPeer = (over: Partial<UapiPeer> = {}): UapiPeer => ({
  publicKey: randomBytes(32).toString('base64'),
  endpoint: null,
  lastHandshakeMs: null,
  rxBytes: 0,
  txBytes: 0,
  allowedIps: ['100.64.0.2/32'],
  persistentKeepalive: 0,
  ...over,
});

describe('PeerReportTracker', () => {
  it('should not report peers that never had a handshake or traffic', () => {
    expect(new PeerReportTracker().changes([uapiPeer(), uapiPeer()])).toEqual([]);
  });

  it('should report a first handshake the first time it is seen, and then only changes', () => {
    const tracker = new PeerReportTracker();
    const p = uapiPeer();
    expect(tracker.changes([p])).toEqual([]);
    const shaken = { ...p, lastHandshakeMs: 1_700_000_000_000, rxBytes: 92, txBytes: 148 };
    expect(tracker.changes([shaken])).toEqual([
      { publicKey: p.publicKey, lastHandshakeOn: 1_700_000_000_000, rxBytes: 92, txBytes: 148 },
    ]);
    expect(tracker.changes([shaken])).toEqual([]);
    expect(tracker.changes([{ ...shaken, rxBytes: 200 }])).toHaveLength(1);
  });

  it('should report a forgotten peer again (its message was not sent)', () => {
    const tracker = new PeerReportTracker();
    const p = uapiPeer({ lastHandshakeMs: 5, rxBytes: 1 });
    const first = tracker.changes([p]);
    tracker.forget(first);
    expect(tracker.changes([p])).toEqual(first);
  });

  it('should forget peers the interface no longer holds, and report them afresh when they return', () => {
    const tracker = new PeerReportTracker();
    const p = uapiPeer({ lastHandshakeMs: 5, rxBytes: 1 });
    tracker.changes([p]);
    tracker.changes([]);
    expect(tracker.changes([p])).toHaveLength(1);
  });
});

describe('chunkReports', () => {
  it('should cut reports into messages of at most 500 peers', () => {
    const stats = Array.from({ length: 1201 }, (_v, i) => ({
      publicKey: String(i),
      lastHandshakeOn: null,
      rxBytes: 0,
      txBytes: 0,
    }));
    expect(chunkReports(stats).map((c) => c.length)).toEqual([500, 500, 201]);
    expect(chunkReports([])).toEqual([]);
  });
});
