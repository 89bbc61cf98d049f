import { KeyedSerialQueue, SerialQueue } from './serial-queue';

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('SerialQueue', () => {
  it('should not start a task before the previous one has finished', async () => {
    const queue = new SerialQueue();
    const events: string[] = [];
    const first = deferred();
    const a = queue.run(async () => {
      events.push('a:start');
      await first.promise;
      events.push('a:end');
      return 'a';
    });
    const b = queue.run(async () => {
      events.push('b:start');
      return 'b';
    });
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['a:start']);
    expect(queue.size).toBe(2);
    first.resolve();
    await expect(a).resolves.toBe('a');
    await expect(b).resolves.toBe('b');
    expect(events).toEqual(['a:start', 'a:end', 'b:start']);
    expect(queue.size).toBe(0);
  });

  it('should keep running later tasks when one fails', async () => {
    const queue = new SerialQueue();
    const failed = queue.run(async () => {
      throw new Error('boom');
    });
    const next = queue.run(async () => 42);
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe(42);
  });

  it('should run tasks in the order they were queued', async () => {
    const queue = new SerialQueue();
    const order: number[] = [];
    await Promise.all(
      [30, 0, 10, 5].map((delay, i) =>
        queue.run(async () => {
          await new Promise((r) => setTimeout(r, delay));
          order.push(i);
        }),
      ),
    );
    expect(order).toEqual([0, 1, 2, 3]);
  });

  it('should report drained only after every queued task has settled', async () => {
    const queue = new SerialQueue();
    const gate = deferred();
    let done = false;
    void queue.run(() => gate.promise);
    void queue.run(async () => {
      done = true;
    });
    const drained = queue.drained().then(() => done);
    gate.resolve();
    await expect(drained).resolves.toBe(true);
  });
});

describe('KeyedSerialQueue', () => {
  it('should run tasks of one key in order and tasks of different keys in parallel', async () => {
    const queue = new KeyedSerialQueue();
    const events: string[] = [];
    const gate = deferred();
    const a1 = queue.run('a', async () => {
      events.push('a1:start');
      await gate.promise;
      events.push('a1:end');
    });
    const a2 = queue.run('a', async () => {
      events.push('a2:start');
    });
    const b1 = queue.run('b', async () => {
      events.push('b1:start');
    });
    await b1;
    expect(events).toEqual(['a1:start', 'b1:start']);
    gate.resolve();
    await Promise.all([a1, a2]);
    expect(events).toEqual(['a1:start', 'b1:start', 'a1:end', 'a2:start']);
  });

  it('should keep running later tasks of a key when one fails', async () => {
    const queue = new KeyedSerialQueue();
    const failed = queue.run('a', async () => {
      throw new Error('boom');
    });
    const next = queue.run('a', async () => 42);
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe(42);
  });

  it('should forget a key once its last task has settled', async () => {
    const queue = new KeyedSerialQueue();
    const gate = deferred();
    const first = queue.run('a', () => gate.promise);
    const second = queue.run('a', async () => 'done');
    void queue.run('b', async () => undefined).catch(() => undefined);
    expect(queue.size).toBe(2);
    gate.resolve();
    await first;
    await expect(second).resolves.toBe('done');
    await new Promise((r) => setImmediate(r));
    expect(queue.size).toBe(0);
  });
});
