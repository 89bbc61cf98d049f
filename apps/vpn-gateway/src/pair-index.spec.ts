// The pair index: symmetric, counted pairs turned into firewall elements, changed and undone in
// transactions whose cost follows the change.
import { PairDelta, PairIndex } from './pair-index';

const P = 'P'.repeat(43) + '=';
const Q = 'Q'.repeat(43) + '=';
const R = 'R'.repeat(43) + '=';

/** Runs `change` in a transaction, commits it and returns the delta, sorted for comparison. */
function tx(index: PairIndex, change: (i: PairIndex) => void): PairDelta {
  index.begin();
  change(index);
  const delta = index.delta();
  index.commit();
  return { add: [...delta.add].sort(), remove: [...delta.remove].sort() };
}

const both = (a: string, b: string): string[] => [`${a} . ${b}`, `${b} . ${a}`].sort();

describe('PairIndex', () => {
  it('should pair two peers when either lists the other, in both directions', () => {
    const index = new PairIndex();
    expect(tx(index, (i) => i.upsert(P, ['10.0.0.1/32'], [Q]))).toEqual({ add: [], remove: [] });
    expect(tx(index, (i) => i.upsert(Q, ['10.0.0.2/32'], []))).toEqual({
      add: both('10.0.0.1', '10.0.0.2'),
      remove: [],
    });
    expect(index.partnersOf(Q)).toEqual([P]);
    expect(index.partnersOf(P)).toEqual([Q]);
  });

  it('should keep the pair while one of two listings remains (reference counted)', () => {
    const index = new PairIndex();
    tx(index, (i) => {
      i.upsert(P, ['10.0.0.1/32'], [Q]);
      i.upsert(Q, ['10.0.0.2/32'], [P]);
    });
    expect(tx(index, (i) => i.upsert(P, ['10.0.0.1/32'], []))).toEqual({ add: [], remove: [] });
    expect(index.partnersOf(P)).toEqual([Q]);
    expect(tx(index, (i) => i.upsert(Q, ['10.0.0.2/32'], []))).toEqual({
      add: [],
      remove: both('10.0.0.1', '10.0.0.2'),
    });
    expect(index.elementCount).toBe(0);
  });

  it.each([
    ['the listing side', P],
    ['the listed side', Q],
  ])('should drop the pair when %s goes, and bring it back when it returns', (_what, leaving) => {
    const index = new PairIndex();
    tx(index, (i) => {
      i.upsert(P, ['10.0.0.1/32'], [Q]);
      i.upsert(Q, ['10.0.0.2/32'], []);
    });
    expect(tx(index, (i) => i.remove(leaving))).toEqual({ add: [], remove: both('10.0.0.1', '10.0.0.2') });
    expect(index.partnersOf(leaving === P ? Q : P)).toEqual([]);
    const ips = leaving === P ? ['10.0.0.1/32'] : ['10.0.0.2/32'];
    const allow = leaving === P ? [Q] : [];
    expect(tx(index, (i) => i.upsert(leaving, ips, allow))).toEqual({
      add: both('10.0.0.1', '10.0.0.2'),
      remove: [],
    });
  });

  it('should ignore an allow entry naming an unknown key until that key appears', () => {
    const index = new PairIndex();
    tx(index, (i) => i.upsert(P, ['10.0.0.1/32'], [R, Q]));
    expect(index.elementCount).toBe(0);
    expect(tx(index, (i) => i.upsert(R, ['10.0.0.3/32'], []))).toEqual({
      add: both('10.0.0.1', '10.0.0.3'),
      remove: [],
    });
  });

  it('should pair every address of one peer with every address of the other', () => {
    const index = new PairIndex();
    const delta = tx(index, (i) => {
      i.upsert(P, ['10.0.0.1/32', '10.0.1.1/32'], [Q]);
      i.upsert(Q, ['10.0.0.2/32'], []);
    });
    expect(delta.add).toEqual([...both('10.0.0.1', '10.0.0.2'), ...both('10.0.1.1', '10.0.0.2')].sort());
  });

  it('should move the elements when a peer gets other addresses, and leave unrelated pairs alone', () => {
    const index = new PairIndex();
    tx(index, (i) => {
      i.upsert(P, ['10.0.0.1/32'], [Q]);
      i.upsert(Q, ['10.0.0.2/32'], []);
      i.upsert(R, ['10.0.0.3/32'], [Q]);
    });
    expect(tx(index, (i) => i.upsert(P, ['10.0.0.9/32'], [Q]))).toEqual({
      add: both('10.0.0.9', '10.0.0.2'),
      remove: both('10.0.0.1', '10.0.0.2'),
    });
    expect(index.partnersOf(Q).sort()).toEqual([P, R].sort());
  });

  it('should count elements two pairs share (peers with one address), so neither removes the other', () => {
    const index = new PairIndex();
    tx(index, (i) => {
      i.upsert(P, ['10.0.0.1/32'], [R]);
      i.upsert(Q, ['10.0.0.1/32'], [R]);
      i.upsert(R, ['10.0.0.3/32'], []);
    });
    expect(index.elementCount).toBe(2);
    expect(tx(index, (i) => i.remove(P))).toEqual({ add: [], remove: [] });
    expect(tx(index, (i) => i.remove(Q))).toEqual({ add: [], remove: both('10.0.0.1', '10.0.0.3') });
  });

  it('should ignore a peer listing itself', () => {
    const index = new PairIndex();
    expect(tx(index, (i) => i.upsert(P, ['10.0.0.1/32'], [P]))).toEqual({ add: [], remove: [] });
    expect(index.partnersOf(P)).toEqual([]);
  });

  it('should report nothing for a change undone within the transaction', () => {
    const index = new PairIndex();
    tx(index, (i) => {
      i.upsert(P, ['10.0.0.1/32'], [Q]);
      i.upsert(Q, ['10.0.0.2/32'], []);
    });
    expect(
      tx(index, (i) => {
        i.remove(Q);
        i.upsert(Q, ['10.0.0.2/32'], []);
      }),
    ).toEqual({ add: [], remove: [] });
  });

  it('should restore everything on rollback, so the same change yields the same delta again', () => {
    const index = new PairIndex();
    tx(index, (i) => {
      i.upsert(P, ['10.0.0.1/32'], [Q]);
      i.upsert(Q, ['10.0.0.2/32'], []);
    });
    const change = (i: PairIndex): void => {
      i.remove(P);
      i.upsert(R, ['10.0.0.3/32'], [Q]);
      i.upsert(Q, ['10.0.0.7/32'], [R]);
    };
    index.begin();
    change(index);
    const first = index.delta();
    index.rollback();
    expect(index.has(R)).toBe(false);
    expect(index.partnersOf(P)).toEqual([Q]);
    expect(index.allElements().sort()).toEqual(both('10.0.0.1', '10.0.0.2'));
    index.begin();
    change(index);
    expect(index.delta()).toEqual(first);
    index.commit();
    expect(index.allElements().sort()).toEqual(both('10.0.0.7', '10.0.0.3'));
  });

  it('should refuse changes outside a transaction', () => {
    expect(() => new PairIndex().upsert(P, ['10.0.0.1/32'], [])).toThrow('outside a transaction');
  });

  it('should change one pair among 10,000 peers without touching the others', () => {
    const index = new PairIndex();
    const client = 'C'.repeat(43) + '=';
    const keys = Array.from({ length: 10_000 }, (_v, n) => `${n.toString(36).padStart(42, 'k')}A=`);
    tx(index, (i) => {
      keys.forEach((k, n) => i.upsert(k, [`10.${n >> 8}.${n & 255}.1/32`], []));
      i.upsert(client, ['10.200.0.1/32'], []);
    });
    // The delta names the one new pair only (its cost is measured in bench/, not here).
    const delta = tx(index, (i) => i.upsert(client, ['10.200.0.1/32'], [keys[1234]]));
    expect(delta).toEqual({ add: both('10.200.0.1', '10.4.210.1'), remove: [] });
  });
});
