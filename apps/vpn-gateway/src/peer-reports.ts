// Which peers to report: those whose handshake or traffic changed since the last report, cut into
// messages of at most MAX_PEERS_PER_MESSAGE.
import { GatewayPeerStats, MAX_PEERS_PER_MESSAGE } from '@app/protocol';
import type { UapiPeer } from '@app/edge';

/**
 * Remembers what was last reported per peer. A peer never reported counts as "no handshake, no
 * traffic", so the thousands of idle peers of a fresh start are not reported at all, and a peer
 * the interface no longer holds is forgotten (re-added, it reports again from its new counters).
 */
export class PeerReportTracker {
  private last = new Map<string, GatewayPeerStats>();

  /** The peers to report now; afterwards they count as reported. */
  changes(peers: readonly UapiPeer[]): GatewayPeerStats[] {
    const next = new Map<string, GatewayPeerStats>();
    const changed: GatewayPeerStats[] = [];
    for (const peer of peers) {
      const stats: GatewayPeerStats = {
        publicKey: peer.publicKey,
        lastHandshakeOn: peer.lastHandshakeMs,
        rxBytes: peer.rxBytes,
        txBytes: peer.txBytes,
      };
      const before = this.last.get(peer.publicKey);
      const differs =
        before === undefined
          ? stats.lastHandshakeOn !== null || stats.rxBytes !== 0 || stats.txBytes !== 0
          : before.lastHandshakeOn !== stats.lastHandshakeOn ||
            before.rxBytes !== stats.rxBytes ||
            before.txBytes !== stats.txBytes;
      if (differs) changed.push(stats);
      next.set(peer.publicKey, before === undefined || differs ? stats : before);
    }
    this.last = next;
    return changed;
  }

  /** Forget these, so the next poll reports them again (their message could not be sent). */
  forget(stats: readonly GatewayPeerStats[]): void {
    for (const s of stats) this.last.delete(s.publicKey);
  }
}

export function chunkReports(stats: readonly GatewayPeerStats[]): GatewayPeerStats[][] {
  const chunks: GatewayPeerStats[][] = [];
  for (let i = 0; i < stats.length; i += MAX_PEERS_PER_MESSAGE)
    chunks.push(stats.slice(i, i + MAX_PEERS_PER_MESSAGE));
  return chunks;
}
