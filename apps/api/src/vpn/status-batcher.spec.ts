import { StatusBatcher, type StatusBatcherOptions } from './status-batcher';

interface Item {
  key: string;
  n: number;
}

/** A batcher whose writes stay open until the test resolves or rejects them. */
function setup(opts: Partial<StatusBatcherOptions<Item>> = {}) {
  const writes: Array<{ items: Item[]; resolve: () => void; reject: (err: Error) => void }> = [];
  const failed: Item[][] = [];
  const dropped: Item[] = [];
  const batcher = new StatusBatcher<Item>({
    write: (items) =>
      new Promise<void>((resolve, reject) => writes.push({ items: [...items], resolve, reject })),
    keyOf: (i) => i.key,
    onFailed: (_err, items) => failed.push(items),
    onDropped: (item) => dropped.push(item),
    ...opts,
  });
  return { batcher, writes, failed, dropped };
}

const tick = () => new Promise<void>((r) => setImmediate(r));
const items = (...specs: string[]): Item[] => specs.map((s) => ({ key: s[0], n: Number(s.slice(1)) }));
const label = (batch: Item[]) => batch.map((i) => `${i.key}${i.n}`);

describe('StatusBatcher', () => {
  it('should write the items of one tick in one batch', async () => {
    const { batcher, writes } = setup();
    for (const i of items('a1', 'b1', 'c1')) batcher.push(i);
    expect(writes).toHaveLength(0);
    await tick();
    expect(writes.map((w) => label(w.items))).toEqual([['a1', 'b1', 'c1']]);
    expect(batcher.pending).toBe(3);
    writes[0].resolve();
    await batcher.whenIdle();
    expect(batcher.pending).toBe(0);
  });

  it('should put a second item of one key into a later batch, after the first is written', async () => {
    const { batcher, writes } = setup({ maxInFlight: 4 });
    for (const i of items('a1', 'b1', 'a2', 'c1', 'a3', 'b2')) batcher.push(i);
    await tick();
    // a2 and b2 wait: their keys have an item in the batch in flight, even with free slots.
    expect(writes.map((w) => label(w.items))).toEqual([['a1', 'b1', 'c1']]);
    writes[0].resolve();
    await tick();
    expect(writes.map((w) => label(w.items))).toEqual([
      ['a1', 'b1', 'c1'],
      ['a2', 'b2'],
    ]);
    writes[1].resolve();
    await tick();
    expect(label(writes[2].items)).toEqual(['a3']);
    writes[2].resolve();
    await batcher.whenIdle();
  });

  it('should flush when maxBatch items are queued, without waiting for the tick', () => {
    const { batcher, writes } = setup({ maxBatch: 2 });
    for (const i of items('a1', 'b1', 'c1')) batcher.push(i);
    expect(writes.map((w) => label(w.items))).toEqual([['a1', 'b1']]);
  });

  it('should keep at most maxInFlight batches in flight and queue the rest', async () => {
    const { batcher, writes } = setup({ maxBatch: 2, maxInFlight: 2 });
    for (const i of items('a1', 'b1', 'c1', 'd1', 'e1', 'f1', 'g1')) batcher.push(i);
    await tick();
    expect(writes).toHaveLength(2);
    expect(batcher.pending).toBe(7);
    writes[0].resolve();
    await tick();
    expect(writes.map((w) => label(w.items))).toEqual([
      ['a1', 'b1'],
      ['c1', 'd1'],
      ['e1', 'f1'],
    ]);
    writes[1].resolve();
    writes[2].resolve();
    await tick();
    expect(label(writes[3].items)).toEqual(['g1']);
    writes[3].resolve();
    await batcher.whenIdle();
  });

  it('should drop and count the oldest items when the queue is full', async () => {
    const { batcher, writes, dropped } = setup({ maxBatch: 2, maxInFlight: 1, maxQueued: 3 });
    for (const i of items('a1', 'b1', 'c1', 'd1', 'e1', 'f1', 'g1')) batcher.push(i);
    // a1 and b1 are in flight; the queue keeps the 3 newest.
    expect(label(dropped)).toEqual(['c1', 'd1']);
    expect(batcher.dropped).toBe(2);
    expect(batcher.pending).toBe(5);
    writes[0].resolve();
    await tick();
    expect(label(writes[1].items)).toEqual(['e1', 'f1']);
    writes[1].resolve();
    await tick();
    writes[2].resolve();
    await batcher.whenIdle();
    expect(writes.flatMap((w) => label(w.items))).toEqual(['a1', 'b1', 'e1', 'f1', 'g1']);
  });

  it('should report a failed batch and go on with the next items of its keys', async () => {
    const { batcher, writes, failed } = setup();
    for (const i of items('a1', 'b1', 'a2')) batcher.push(i);
    await tick();
    writes[0].reject(new Error('database down'));
    await tick();
    expect(failed.map(label)).toEqual([['a1', 'b1']]);
    expect(label(writes[1].items)).toEqual(['a2']);
    writes[1].resolve();
    await batcher.whenIdle();
    expect(batcher.pending).toBe(0);
  });

  it('should make progress when the head of the queue holds only busy keys', async () => {
    const { batcher, writes } = setup({ maxBatch: 1, maxInFlight: 2 });
    for (const i of items('a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'b1')) batcher.push(i);
    // a1 in flight; the scan (4 × maxBatch) finds only a's, so b1 waits for a1.
    expect(writes.map((w) => label(w.items))).toEqual([['a1']]);
    for (let k = 0; k < 7; k++) {
      writes[k].resolve();
      await tick();
    }
    await batcher.whenIdle();
    expect(writes.flatMap((w) => label(w.items)).sort()).toEqual(['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'b1']);
    expect(writes.filter((w) => w.items[0].key === 'a').map((w) => w.items[0].n)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
