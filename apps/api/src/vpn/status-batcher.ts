/**
 * Groups items written one statement per batch (the VPN status reports) while keeping each key's
 * items (a device's reports) in order: a key appears at most once per batch and in at most one
 * batch in flight, so its next item waits for the previous batch to finish. Batches leave when
 * `maxBatch` items are queued or at the end of the current tick, with at most `maxInFlight` in
 * flight; behind a slow writer the queue grows up to `maxQueued`, then the oldest items are dropped.
 */
export interface StatusBatcherOptions<T> {
  /** Writes one batch; a rejection is reported to `onFailed` and the batch is not retried. */
  write: (items: T[]) => Promise<void>;
  keyOf: (item: T) => string;
  onFailed: (err: unknown, items: T[]) => void;
  /** Called for every item dropped because the queue was full, with the total dropped so far. */
  onDropped: (item: T, droppedTotal: number) => void;
  maxBatch?: number;
  maxInFlight?: number;
  maxQueued?: number;
}

export class StatusBatcher<T> {
  private queue: T[] = [];
  /** Keys with an item in a batch in flight. */
  private readonly busy = new Set<string>();
  private inFlightItems = 0;
  private inFlightBatches = 0;
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly maxQueued: number;
  dropped = 0;

  constructor(private readonly opts: StatusBatcherOptions<T>) {
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxInFlight = opts.maxInFlight ?? 3;
    this.maxQueued = opts.maxQueued ?? 50_000;
  }

  /** Items queued or in a batch in flight. */
  get pending(): number {
    return this.queue.length + this.inFlightItems;
  }

  push(item: T): void {
    this.queue.push(item);
    if (this.queue.length > this.maxQueued) this.opts.onDropped(this.queue.shift() as T, ++this.dropped);
    if (this.queue.length >= this.maxBatch) this.pump();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.pump();
      });
    }
  }

  /** Resolves when nothing is queued or in flight. */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.inFlightBatches < this.maxInFlight && this.queue.length > 0) {
      const batch = this.take();
      // Every queued key has a batch in flight; the end of that batch pumps again.
      if (batch.length === 0) return;
      this.inFlightBatches++;
      this.inFlightItems += batch.length;
      void this.opts
        .write(batch)
        .catch((err: unknown) => this.opts.onFailed(err, batch))
        .finally(() => {
          this.inFlightBatches--;
          this.inFlightItems -= batch.length;
          for (const item of batch) this.busy.delete(this.opts.keyOf(item));
          this.pump();
          if (this.pending === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
        });
    }
  }

  /** Takes the oldest items of distinct, not busy keys; scans a bounded prefix of the queue. */
  private take(): T[] {
    const batch: T[] = [];
    const skipped: T[] = [];
    const scanLimit = Math.min(this.queue.length, this.maxBatch * 4);
    let i = 0;
    for (; i < scanLimit && batch.length < this.maxBatch; i++) {
      const item = this.queue[i];
      const key = this.opts.keyOf(item);
      if (this.busy.has(key)) skipped.push(item);
      else {
        this.busy.add(key);
        batch.push(item);
      }
    }
    this.queue = i === this.queue.length ? skipped : skipped.concat(this.queue.slice(i));
    return batch;
  }
}
