// PeerSync against a recording dataplane: serial and chunk rules, what each message changes (only
// the difference), and that a refused or failed message changes nothing.
import { randomBytes, randomUUID } from 'node:crypto';

import { GatewayApply, GatewayPeer, GatewaySync, encodeGatewayApply, encodeGatewaySync } from '@app/protocol';

import type { PairDelta } from './pair-index';
import { Dataplane, InterfacePeer, PeerSync } from './peer-sync';
import { createLogger } from '@app/edge';

type Call =
  | { op: 'replacePeers'; keys: string[] }
  | { op: 'changePeers'; upsert: string[]; remove: string[] }
  | { op: 'setAddresses'; addresses: string[] }
  | { op: 'applyPairs'; add: string[]; remove: string[]; flush: boolean };

class RecordingDataplane implements Dataplane {
  readonly calls: Call[] = [];
  readonly peers = new Map<string, string[]>();
  readonly elements = new Set<string>();
  failNext: Call['op'] | undefined;

  async replacePeers(peers: ReadonlyMap<string, InterfacePeer>): Promise<void> {
    this.fail('replacePeers');
    this.calls.push({ op: 'replacePeers', keys: [...peers.keys()].sort() });
    this.peers.clear();
    for (const p of peers.values()) this.peers.set(p.publicKey, [...p.allowedIps]);
  }

  async changePeers(upsert: readonly InterfacePeer[], remove: readonly string[]): Promise<void> {
    this.fail('changePeers');
    this.calls.push({
      op: 'changePeers',
      upsert: upsert.map((p) => p.publicKey).sort(),
      remove: [...remove].sort(),
    });
    for (const key of remove) this.peers.delete(key);
    for (const p of upsert) this.peers.set(p.publicKey, [...p.allowedIps]);
  }

  async setAddresses(addresses: readonly string[]): Promise<void> {
    this.fail('setAddresses');
    this.calls.push({ op: 'setAddresses', addresses: [...addresses] });
  }

  async applyPairs(delta: PairDelta, flush: boolean): Promise<void> {
    this.fail('applyPairs');
    this.calls.push({
      op: 'applyPairs',
      add: [...delta.add].sort(),
      remove: [...delta.remove].sort(),
      flush,
    });
    if (flush) this.elements.clear();
    for (const e of delta.remove) {
      // nft refuses to delete an element it does not hold; so must the fake.
      if (!this.elements.delete(e)) throw new Error(`no element ${e}`);
    }
    for (const e of delta.add) this.elements.add(e);
  }

  take(): Call[] {
    return this.calls.splice(0);
  }

  private fail(op: Call['op']): void {
    if (this.failNext !== op) return;
    this.failNext = undefined;
    throw new Error(`${op} broke`);
  }
}

const ACCOUNT = randomUUID();
const key = (): string => randomBytes(32).toString('base64');

function peer(n: number, allow: string[] = [], k = key()): GatewayPeer {
  return {
    publicKey: k,
    allowedIps: [`100.64.${n >> 8}.${n & 255}/32`],
    kind: 'device',
    accountId: ACCOUNT,
    allow,
  };
}

const ADDRESSES = ['100.64.0.1/16'];

function syncBody(s: Partial<GatewaySync> & Pick<GatewaySync, 'serial'>): Buffer {
  return encodeGatewaySync({ chunk: 0, last: true, addresses: ADDRESSES, peers: [], ...s });
}

function applyBody(a: Partial<GatewayApply> & Pick<GatewayApply, 'serial' | 'previous'>): Buffer {
  return encodeGatewayApply({ addresses: ADDRESSES, upsert: [], remove: [], ...a });
}

function setUp(): { dp: RecordingDataplane; sync: PeerSync } {
  const dp = new RecordingDataplane();
  return { dp, sync: new PeerSync(dp, createLogger('silent')) };
}

describe('PeerSync: full syncs', () => {
  it('should hold exactly the peers of all chunks once the last one arrives, and then the serial', async () => {
    const { dp, sync } = setUp();
    const [a, b, c] = [peer(1), peer(2), peer(3)];
    expect(await sync.handle('sync', syncBody({ serial: 5, chunk: 0, last: false, peers: [a, b] }))).toEqual({
      code: 200,
      serial: 0,
    });
    expect(dp.take()).toEqual([]);
    expect(await sync.handle('sync', syncBody({ serial: 5, chunk: 1, last: true, peers: [c] }))).toEqual({
      code: 200,
      serial: 5,
    });
    expect(dp.take()).toEqual([
      { op: 'replacePeers', keys: [a, b, c].map((p) => p.publicKey).sort() },
      { op: 'setAddresses', addresses: ADDRESSES },
    ]);
    expect(sync.serial).toBe(5);
    expect(sync.peerCount).toBe(3);
  });

  it('should replace the previous set: peers left out are removed', async () => {
    const { dp, sync } = setUp();
    const [a, b] = [peer(1), peer(2)];
    await sync.handle('sync', syncBody({ serial: 1, peers: [a, b] }));
    expect(await sync.handle('sync', syncBody({ serial: 2, peers: [b] }))).toEqual({ code: 200, serial: 2 });
    expect([...dp.peers.keys()]).toEqual([b.publicKey]);
    expect(sync.peer(a.publicKey)).toBeUndefined();
  });

  it('should answer 409 with the held serial and drop the pending set for a chunk out of order', async () => {
    const { dp, sync } = setUp();
    await sync.handle('sync', syncBody({ serial: 1, peers: [peer(1)] }));
    dp.take();
    await sync.handle('sync', syncBody({ serial: 2, chunk: 0, last: false, peers: [peer(2)] }));
    const gap = await sync.handle('sync', syncBody({ serial: 2, chunk: 2, last: true }));
    expect(gap).toMatchObject({ code: 409, serial: 1 });
    // The pending set is gone: its next chunk is refused too.
    expect(await sync.handle('sync', syncBody({ serial: 2, chunk: 1, last: true }))).toMatchObject({
      code: 409,
      serial: 1,
    });
    expect(dp.take()).toEqual([]);
    expect(sync.peerCount).toBe(1);
  });

  it('should refuse a next chunk of another serial, and a chunk without a start', async () => {
    const { sync } = setUp();
    expect(await sync.handle('sync', syncBody({ serial: 3, chunk: 1, last: true }))).toMatchObject({
      code: 409,
    });
    await sync.handle('sync', syncBody({ serial: 3, chunk: 0, last: false }));
    expect(await sync.handle('sync', syncBody({ serial: 4, chunk: 1, last: true }))).toMatchObject({
      code: 409,
      serial: 0,
    });
  });

  it('should restart the pending set with a new chunk 0', async () => {
    const { dp, sync } = setUp();
    const [a, b] = [peer(1), peer(2)];
    await sync.handle('sync', syncBody({ serial: 3, chunk: 0, last: false, peers: [a] }));
    await sync.handle('sync', syncBody({ serial: 4, chunk: 0, last: false, peers: [b] }));
    expect(await sync.handle('sync', syncBody({ serial: 4, chunk: 1, last: true }))).toEqual({
      code: 200,
      serial: 4,
    });
    expect([...dp.peers.keys()]).toEqual([b.publicKey]);
  });

  it('should answer 400 to a body that does not parse, and change nothing (not even the pending set)', async () => {
    const { dp, sync } = setUp();
    await sync.handle('sync', syncBody({ serial: 1, peers: [peer(1)] }));
    await sync.handle('sync', syncBody({ serial: 2, chunk: 0, last: false, peers: [peer(2)] }));
    dp.take();
    for (const body of [undefined, Buffer.from('{'), Buffer.from('[]'), Buffer.from('{"serial":2}')]) {
      const reply = await sync.handle('sync', body);
      expect(reply.code).toBe(400);
      expect(reply.serial).toBe(1);
      expect(reply.exceptionMessage).toEqual(expect.any(String));
    }
    expect(dp.take()).toEqual([]);
    expect(await sync.handle('sync', syncBody({ serial: 2, chunk: 1, last: true }))).toEqual({
      code: 200,
      serial: 2,
    });
  });
});

describe('PeerSync: change sets', () => {
  async function synced(peers: GatewayPeer[]): Promise<{ dp: RecordingDataplane; sync: PeerSync }> {
    const s = setUp();
    const chunks = Math.max(1, Math.ceil(peers.length / 500));
    for (let chunk = 0; chunk < chunks; chunk++) {
      const part = peers.slice(chunk * 500, (chunk + 1) * 500);
      const reply = await s.sync.handle(
        'sync',
        syncBody({ serial: 10, chunk, last: chunk === chunks - 1, peers: part }),
      );
      expect(reply.code).toBe(200);
    }
    expect(s.sync.serial).toBe(10);
    s.dp.take();
    return s;
  }

  it('should refuse a change set before the first full sync, even from serial 0', async () => {
    const { dp, sync } = setUp();
    const reply = await sync.handle('apply', applyBody({ serial: 1, previous: 0, upsert: [peer(1)] }));
    expect(reply).toMatchObject({ code: 409, serial: 0 });
    expect(dp.take()).toEqual([]);
  });

  it('should refuse a change set from another serial with 409, changing nothing', async () => {
    const { dp, sync } = await synced([peer(1)]);
    const reply = await sync.handle('apply', applyBody({ serial: 12, previous: 11, upsert: [peer(2)] }));
    expect(reply).toMatchObject({ code: 409, serial: 10 });
    expect(dp.take()).toEqual([]);
    expect(sync.peerCount).toBe(1);
  });

  it('should pass on only the peers that change, among many', async () => {
    const existing = Array.from({ length: 1000 }, (_v, n) => peer(n));
    const { dp, sync } = await synced(existing);
    const added = peer(2000);
    const moved = { ...existing[7], allowedIps: ['100.64.200.7/32'] };
    const reply = await sync.handle(
      'apply',
      applyBody({
        serial: 11,
        previous: 10,
        upsert: [added, moved, existing[8]],
        remove: [existing[9].publicKey],
      }),
    );
    expect(reply).toEqual({ code: 200, serial: 11 });
    expect(dp.take()).toEqual([
      {
        op: 'changePeers',
        upsert: [added.publicKey, moved.publicKey].sort(),
        remove: [existing[9].publicKey],
      },
      { op: 'setAddresses', addresses: ADDRESSES },
    ]);
    expect(dp.peers.get(moved.publicKey)).toEqual(['100.64.200.7/32']);
    expect(sync.peerCount).toBe(1000);
  });

  it('should treat an allow-only change as a firewall change, not an interface change', async () => {
    const [a, b] = [peer(1), peer(2)];
    const { dp, sync } = await synced([a, b]);
    await sync.handle(
      'apply',
      applyBody({ serial: 11, previous: 10, upsert: [{ ...a, allow: [b.publicKey] }] }),
    );
    expect(dp.take()).toEqual([
      { op: 'setAddresses', addresses: ADDRESSES },
      {
        op: 'applyPairs',
        add: ['100.64.0.1 . 100.64.0.2', '100.64.0.2 . 100.64.0.1'],
        remove: [],
        flush: false,
      },
    ]);
    expect(sync.partnersOf(b.publicKey)).toEqual([a.publicKey]);
  });

  it('should let an upsert win over a removal of the same key in one change set', async () => {
    const a = peer(1);
    const { dp, sync } = await synced([a]);
    const moved = { ...a, allowedIps: ['100.64.9.9/32'] };
    await sync.handle(
      'apply',
      applyBody({ serial: 11, previous: 10, upsert: [moved], remove: [a.publicKey] }),
    );
    expect(dp.take()[0]).toEqual({ op: 'changePeers', upsert: [a.publicKey], remove: [] });
    expect(sync.peer(a.publicKey)?.allowedIps).toEqual(['100.64.9.9/32']);
  });

  it('should close the pairs of a removed peer', async () => {
    const client = peer(100);
    const [a, b] = [peer(1), peer(2)];
    const { dp, sync } = await synced([a, b, { ...client, allow: [a.publicKey, b.publicKey] }]);
    expect(dp.elements.size).toBe(4);
    await sync.handle('apply', applyBody({ serial: 11, previous: 10, remove: [client.publicKey] }));
    expect(dp.elements.size).toBe(0);
    expect(sync.partnersOf(a.publicKey)).toEqual([]);
  });

  it('should answer 500 and keep the serial when the interface fails, and succeed when resent', async () => {
    const { dp, sync } = await synced([peer(1)]);
    const body = applyBody({ serial: 11, previous: 10, upsert: [peer(2)] });
    dp.failNext = 'changePeers';
    const failed = await sync.handle('apply', body);
    expect(failed).toMatchObject({ code: 500, serial: 10 });
    expect(failed.exceptionMessage).toContain('changePeers broke');
    expect(sync.peerCount).toBe(1);
    expect(await sync.handle('apply', body)).toEqual({ code: 200, serial: 11 });
  });

  it('should roll the pairs back when the firewall fails, so a resend makes the same change', async () => {
    const [a, b] = [peer(1), peer(2)];
    const { dp, sync } = await synced([a, b]);
    const body = applyBody({ serial: 11, previous: 10, upsert: [{ ...a, allow: [b.publicKey] }] });
    dp.failNext = 'applyPairs';
    expect(await sync.handle('apply', body)).toMatchObject({ code: 500, serial: 10 });
    expect(sync.partnersOf(a.publicKey)).toEqual([]);
    dp.take();
    expect(await sync.handle('apply', body)).toEqual({ code: 200, serial: 11 });
    expect(dp.elements.size).toBe(2);
  });

  it('should answer 400 to an unreadable change set and keep everything', async () => {
    const { dp, sync } = await synced([peer(1)]);
    const reply = await sync.handle('apply', Buffer.from(JSON.stringify({ serial: 11, previous: 10 })));
    expect(reply).toMatchObject({ code: 400, serial: 10 });
    expect(dp.take()).toEqual([]);
  });
});

describe('PeerSync: firewall after taking over an interface', () => {
  it('should rewrite the whole pair set (flush) with the first full sync, then change it incrementally', async () => {
    const dp = new RecordingDataplane();
    dp.elements.add('1.1.1.1 . 2.2.2.2');
    const sync = new PeerSync(dp, createLogger('silent'), true);
    const [a, b] = [peer(1), peer(2)];
    await sync.handle('sync', syncBody({ serial: 1, peers: [a, { ...b, allow: [a.publicKey] }] }));
    const calls = dp.take();
    expect(calls[calls.length - 1]).toMatchObject({ op: 'applyPairs', flush: true });
    expect([...dp.elements].sort()).toEqual(['100.64.0.1 . 100.64.0.2', '100.64.0.2 . 100.64.0.1']);
    await sync.handle('sync', syncBody({ serial: 2, peers: [a, b] }));
    expect(dp.take()[2]).toMatchObject({ op: 'applyPairs', flush: false, add: [] });
    expect(dp.elements.size).toBe(0);
  });
});
