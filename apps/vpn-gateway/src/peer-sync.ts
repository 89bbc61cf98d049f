// The gateway's side of the peer protocol: the serial it holds, chunked full syncs, change sets,
// and turning each accepted message into the smallest change of interface, addresses and firewall.
import {
  GATEWAY_SERIAL_GAP,
  GatewayApply,
  GatewayMessageError,
  GatewayPeer,
  GatewayReply,
  GatewaySync,
  ResponseCodes,
  parseGatewayApply,
  parseGatewaySync,
} from '@app/protocol';

import { PairDelta, PairIndex } from './pair-index';
import { Logger, errorFields } from '@app/edge';

/** A peer as the interface sees it: its key and its own addresses. */
export interface InterfacePeer {
  publicKey: string;
  allowedIps: readonly string[];
}

/** What the engine needs from the machine: the WireGuard interface, its addresses, the firewall. */
export interface Dataplane {
  /** Makes the interface hold exactly these peers, writing only those that differ from what it holds. */
  replacePeers(peers: ReadonlyMap<string, InterfacePeer>): Promise<void>;
  /** Adds or changes `upsert` and removes `remove`; every other peer is left alone. */
  changePeers(upsert: readonly InterfacePeer[], remove: readonly string[]): Promise<void>;
  /** Makes the interface hold exactly these addresses (with prefix). */
  setAddresses(addresses: readonly string[]): Promise<void>;
  /** One atomic firewall change; with `flush` every element not in `delta.add` goes first. */
  applyPairs(delta: PairDelta, flush: boolean): Promise<void>;
}

export type GatewayCommandName = 'sync' | 'apply';

interface PendingSync {
  serial: number;
  nextChunk: number;
  peers: Map<string, GatewayPeer>;
}

/** Longest failure text put into a reply: enough to name the step and the tool's complaint. */
const MAX_FAILURE_MESSAGE = 300;

/**
 * Holds the desired peer map of the serial last applied. Messages are handled one at a time (the
 * caller queues them). A message either completes and the serial moves, or it is answered with an
 * error and the serial stays, so the cloud resends it or falls back to a full sync. What a failed
 * message already changed on the interface stays (it only ever adds, changes or removes the peers
 * the message names); the interface compares against what wireguard-go really holds, so the resend
 * converges, and the pair index is rolled back to what the firewall holds.
 */
export class PeerSync {
  private held = 0;
  /** False until a full sync has completed: before that the interface may hold a previous run's peers. */
  private synced = false;
  private peers = new Map<string, GatewayPeer>();
  private pairs = new PairIndex();
  private pending: PendingSync | undefined;

  constructor(
    private readonly dataplane: Dataplane,
    private readonly logger: Logger,
    /**
     * True when the firewall set may hold elements this process does not know (an adopted interface):
     * the first full sync then rewrites the set instead of changing it.
     */
    private pairsStale = false,
  ) {}

  get serial(): number {
    return this.held;
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** Keys the gateway should hold, with their allow lists (for tests and diagnostics). */
  peer(key: string): GatewayPeer | undefined {
    return this.peers.get(key);
  }

  partnersOf(key: string): string[] {
    return this.pairs.partnersOf(key);
  }

  async handle(command: GatewayCommandName, body: Uint8Array | undefined): Promise<GatewayReply> {
    try {
      return command === 'sync'
        ? await this.sync(parseGatewaySync(body))
        : await this.apply(parseGatewayApply(body));
    } catch (err) {
      if (err instanceof GatewayMessageError) {
        this.logger.warn({ command, ...errorFields(err) }, 'malformed gateway request refused');
        return { code: ResponseCodes.BAD_REQUEST, serial: this.held, exceptionMessage: err.message };
      }
      throw err;
    }
  }

  private async sync(s: GatewaySync): Promise<GatewayReply> {
    if (s.chunk === 0) {
      this.pending = { serial: s.serial, nextChunk: 0, peers: new Map() };
    }
    const pending = this.pending;
    if (pending === undefined || pending.serial !== s.serial || pending.nextChunk !== s.chunk) {
      this.logger.warn(
        {
          serial: s.serial,
          chunk: s.chunk,
          expected: pending && { serial: pending.serial, chunk: pending.nextChunk },
        },
        'sync chunk out of order, pending sync dropped',
      );
      this.pending = undefined;
      return {
        code: GATEWAY_SERIAL_GAP,
        serial: this.held,
        exceptionMessage: `sync chunk ${s.chunk} of serial ${s.serial} does not follow the chunks received`,
      };
    }
    for (const peer of s.peers) pending.peers.set(peer.publicKey, peer);
    pending.nextChunk++;
    if (!s.last) return { code: ResponseCodes.OK, serial: this.held };
    this.pending = undefined;
    return this.applyFullSync(s.serial, pending.peers, s.addresses);
  }

  private async applyFullSync(
    serial: number,
    desired: Map<string, GatewayPeer>,
    addresses: readonly string[],
  ): Promise<GatewayReply> {
    const started = Date.now();
    const removed: string[] = [];
    for (const key of this.peers.keys()) if (!desired.has(key)) removed.push(key);
    const changed: GatewayPeer[] = [];
    for (const peer of desired.values())
      if (!samePeer(this.peers.get(peer.publicKey), peer)) changed.push(peer);

    // After adoption the firewall's set is unknown: build a fresh index and rewrite the set at once.
    const rebuild = this.pairsStale;
    const pairs = rebuild ? new PairIndex() : this.pairs;
    pairs.begin();
    try {
      if (rebuild) {
        for (const peer of desired.values()) pairs.upsert(peer.publicKey, peer.allowedIps, peer.allow);
      } else {
        for (const key of removed) pairs.remove(key);
        for (const peer of changed) pairs.upsert(peer.publicKey, peer.allowedIps, peer.allow);
      }
      const delta = pairs.delta();
      await this.dataplane.replacePeers(desired);
      await this.dataplane.setAddresses(addresses);
      await this.applyPairs(delta, rebuild);
      pairs.commit();
    } catch (err) {
      pairs.rollback();
      return this.failed('sync', serial, err);
    }
    this.pairs = pairs;
    this.pairsStale = false;
    this.peers = desired;
    this.held = serial;
    this.synced = true;
    this.logger.info(
      {
        serial,
        peers: desired.size,
        added: changed.length,
        removed: removed.length,
        pairElements: pairs.elementCount,
        ms: Date.now() - started,
      },
      'full sync applied',
    );
    return { code: ResponseCodes.OK, serial };
  }

  private async apply(a: GatewayApply): Promise<GatewayReply> {
    if (!this.synced || a.previous !== this.held) {
      this.logger.info(
        { previous: a.previous, serial: a.serial, held: this.held, synced: this.synced },
        'change set refused: it does not start from the serial held',
      );
      return {
        code: GATEWAY_SERIAL_GAP,
        serial: this.held,
        exceptionMessage: this.synced
          ? `the gateway holds serial ${this.held}, not ${a.previous}`
          : 'the gateway has not received a full sync since it started',
      };
    }
    const upserts = new Map<string, GatewayPeer>();
    for (const peer of a.upsert) upserts.set(peer.publicKey, peer);
    const removed = a.remove.filter((key) => !upserts.has(key) && this.peers.has(key));
    const changed = [...upserts.values()].filter((p) => !samePeer(this.peers.get(p.publicKey), p));

    this.pairs.begin();
    try {
      for (const key of removed) this.pairs.remove(key);
      for (const peer of changed) this.pairs.upsert(peer.publicKey, peer.allowedIps, peer.allow);
      const delta = this.pairs.delta();
      // A change of `allow` alone is the firewall's business; the interface only sees addresses.
      const moved = changed.filter((p) => {
        const old = this.peers.get(p.publicKey);
        return old === undefined || !sameMembers(old.allowedIps, p.allowedIps);
      });
      if (moved.length > 0 || removed.length > 0) await this.dataplane.changePeers(moved, removed);
      await this.dataplane.setAddresses(a.addresses);
      await this.applyPairs(delta, false);
      this.pairs.commit();
    } catch (err) {
      this.pairs.rollback();
      return this.failed('apply', a.serial, err);
    }
    for (const key of removed) this.peers.delete(key);
    for (const peer of changed) this.peers.set(peer.publicKey, peer);
    this.held = a.serial;
    this.logger.debug(
      { serial: a.serial, upserted: changed.length, removed: removed.length, peers: this.peers.size },
      'change set applied',
    );
    return { code: ResponseCodes.OK, serial: a.serial };
  }

  private async applyPairs(delta: PairDelta, flush: boolean): Promise<void> {
    if (!flush && delta.add.length === 0 && delta.remove.length === 0) return;
    try {
      await this.dataplane.applyPairs(delta, flush);
    } catch (err) {
      // An nft batch is one transaction, but a killed or timed-out nft leaves us unsure: the next
      // full sync rewrites the whole set.
      this.pairsStale = true;
      throw err;
    }
  }

  private failed(command: GatewayCommandName, serial: number, err: unknown): GatewayReply {
    const message = err instanceof Error ? err.message : String(err);
    this.logger.error({ command, serial, held: this.held, ...errorFields(err) }, 'gateway request failed');
    return {
      code: ResponseCodes.INTERNAL_ERROR,
      serial: this.held,
      exceptionMessage: `${command} ${serial} failed: ${message}`.slice(0, MAX_FAILURE_MESSAGE),
    };
  }
}

function samePeer(a: GatewayPeer | undefined, b: GatewayPeer): boolean {
  if (a === undefined) return false;
  return (
    a.kind === b.kind &&
    a.accountId === b.accountId &&
    sameMembers(a.allowedIps, b.allowedIps) &&
    sameMembers(a.allow, b.allow)
  );
}

/** Equal as sets: order and repeated entries do not make a peer "changed". */
function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  if (a.length === b.length && a.every((x, i) => x === b[i])) return true;
  const sa = new Set(a);
  const sb = new Set(b);
  if (sa.size !== sb.size) return false;
  for (const x of sb) if (!sa.has(x)) return false;
  return true;
}
