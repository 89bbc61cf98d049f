// Which peers may exchange packets through the gateway, kept as the exact set of address pairs the
// firewall holds, so that one peer's change turns into the few set elements it adds or removes.

/** Firewall set elements to add and delete, each `a.b.c.d . e.f.g.h` (source . destination). */
export interface PairDelta {
  add: string[];
  remove: string[];
}

/**
 * A pair of peers P and Q may talk while P lists Q in `allow` or Q lists P. Each pair is counted
 * (0, 1 or 2 listings) and exists in the firewall as every /32 of P with every /32 of Q, in both
 * directions; elements are counted too, because two pairs can share one when peers share an
 * address. An `allow` entry naming a key that is not (yet) a peer waits in `listedBy` until it is.
 *
 * Changes run in a transaction: `delta()` says what the firewall must do, `rollback()` undoes them
 * in memory when the firewall (or anything else of the message) fails, at a cost proportional to
 * the change, never to the size of the index.
 */
export class PairIndex {
  /** Present peers → their host addresses (without /32). */
  private readonly hosts = new Map<string, readonly string[]>();
  /** Present peers → the keys they list. */
  private readonly lists = new Map<string, ReadonlySet<string>>();
  /** Any key → the present peers listing it. */
  private readonly listedBy = new Map<string, Set<string>>();
  /** Present peer → present partner → number of listings between them (1 or 2). */
  private readonly partners = new Map<string, Map<string, number>>();
  private readonly elements = new Map<string, number>();
  private journal: (() => void)[] | undefined;
  /** Elements touched in the transaction → whether they were in the firewall before it. */
  private touched: Map<string, boolean> | undefined;

  get peerCount(): number {
    return this.hosts.size;
  }

  get elementCount(): number {
    return this.elements.size;
  }

  has(key: string): boolean {
    return this.hosts.has(key);
  }

  /** The keys `key` may talk with. */
  partnersOf(key: string): string[] {
    return [...(this.partners.get(key)?.keys() ?? [])];
  }

  /** Every element, for rebuilding the firewall set from scratch. */
  allElements(): string[] {
    return [...this.elements.keys()];
  }

  begin(): void {
    if (this.journal !== undefined) throw new Error('a pair transaction is already open');
    this.journal = [];
    this.touched = new Map();
  }

  /** What the firewall must change for the transaction so far: elements that appeared or vanished. */
  delta(): PairDelta {
    const delta: PairDelta = { add: [], remove: [] };
    for (const [element, before] of this.openTouched()) {
      const now = this.elements.has(element);
      if (now && !before) delta.add.push(element);
      else if (!now && before) delta.remove.push(element);
    }
    return delta;
  }

  commit(): void {
    this.openTouched();
    this.journal = undefined;
    this.touched = undefined;
  }

  rollback(): void {
    const journal = this.journal;
    if (journal === undefined) return;
    for (let i = journal.length - 1; i >= 0; i--) journal[i]();
    this.journal = undefined;
    this.touched = undefined;
  }

  /** Adds a peer or changes its addresses and allow list; `allowedIps` are /32 CIDRs. */
  upsert(key: string, allowedIps: readonly string[], allow: Iterable<string>): void {
    this.openTouched();
    const hosts = [...new Set(allowedIps.map(hostOf))];
    const wanted = new Set(allow);
    wanted.delete(key);
    const oldHosts = this.hosts.get(key);
    if (oldHosts === undefined) {
      this.setIn(this.hosts, key, hosts);
      this.setIn(this.lists, key, wanted);
      this.setIn(this.partners, key, new Map<string, number>());
      for (const q of wanted) this.listing(key, q, +1);
      for (const lister of this.listedBy.get(key) ?? []) this.count(key, lister, +1);
      return;
    }
    if (!sameMembers(oldHosts, hosts)) {
      const partners = [...(this.partners.get(key)?.keys() ?? [])];
      for (const q of partners) this.pairElements(key, q, -1);
      this.setIn(this.hosts, key, hosts);
      for (const q of partners) this.pairElements(key, q, +1);
    }
    const old = this.lists.get(key) ?? new Set<string>();
    for (const q of old) if (!wanted.has(q)) this.listing(key, q, -1);
    for (const q of wanted) if (!old.has(q)) this.listing(key, q, +1);
    this.setIn(this.lists, key, wanted);
  }

  remove(key: string): void {
    this.openTouched();
    if (!this.hosts.has(key)) return;
    for (const q of [...(this.partners.get(key)?.keys() ?? [])]) {
      // The pair goes away whatever its count: one side is gone.
      this.pairElements(key, q, -1);
      const theirs = this.partners.get(q);
      if (theirs !== undefined) this.deleteIn(theirs, key);
    }
    this.deleteIn(this.partners, key);
    for (const q of this.lists.get(key) ?? []) this.unlist(key, q);
    this.deleteIn(this.lists, key);
    this.deleteIn(this.hosts, key);
  }

  /** P starts (+1) or stops (-1) listing Q. */
  private listing(p: string, q: string, step: 1 | -1): void {
    if (step > 0) {
      let listers = this.listedBy.get(q);
      if (listers === undefined) {
        listers = new Set();
        this.setIn(this.listedBy, q, listers);
      }
      this.addTo(listers, p);
    } else {
      this.unlist(p, q);
    }
    if (this.hosts.has(q)) this.count(p, q, step);
  }

  private unlist(p: string, q: string): void {
    const listers = this.listedBy.get(q);
    if (listers === undefined) return;
    this.deleteFrom(listers, p);
    if (listers.size === 0) this.deleteIn(this.listedBy, q);
  }

  private count(p: string, q: string, step: 1 | -1): void {
    const mine = this.partners.get(p);
    const theirs = this.partners.get(q);
    if (mine === undefined || theirs === undefined) return;
    const before = mine.get(q) ?? 0;
    const after = before + step;
    if (before === 0 && after > 0) this.pairElements(p, q, +1);
    if (before > 0 && after === 0) this.pairElements(p, q, -1);
    if (after === 0) {
      this.deleteIn(mine, q);
      this.deleteIn(theirs, p);
    } else {
      this.setIn(mine, q, after);
      this.setIn(theirs, p, after);
    }
  }

  private pairElements(p: string, q: string, step: 1 | -1): void {
    const ps = this.hosts.get(p) ?? [];
    const qs = this.hosts.get(q) ?? [];
    for (const a of ps) {
      for (const b of qs) {
        this.element(`${a} . ${b}`, step);
        this.element(`${b} . ${a}`, step);
      }
    }
  }

  private element(element: string, step: 1 | -1): void {
    const before = this.elements.get(element) ?? 0;
    const touched = this.openTouched();
    if (!touched.has(element)) touched.set(element, before > 0);
    const after = before + step;
    if (after <= 0) this.deleteIn(this.elements, element);
    else this.setIn(this.elements, element, after);
  }

  private openTouched(): Map<string, boolean> {
    if (this.touched === undefined) throw new Error('pair index changed outside a transaction');
    return this.touched;
  }

  // Every mutation goes through these four, which record how to undo it.

  private setIn<K, V>(map: Map<K, V>, key: K, value: V): void {
    const had = map.has(key);
    const old = map.get(key);
    map.set(key, value);
    this.journal?.push(had ? () => map.set(key, old as V) : () => map.delete(key));
  }

  private deleteIn<K, V>(map: Map<K, V>, key: K): void {
    if (!map.has(key)) return;
    const old = map.get(key) as V;
    map.delete(key);
    this.journal?.push(() => map.set(key, old));
  }

  private addTo<T>(set: Set<T>, value: T): void {
    if (set.has(value)) return;
    set.add(value);
    this.journal?.push(() => set.delete(value));
  }

  private deleteFrom<T>(set: Set<T>, value: T): void {
    if (!set.delete(value)) return;
    this.journal?.push(() => set.add(value));
  }
}

function hostOf(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((x) => set.has(x));
}
