// Task ordering shared by the cloud and the edge processes: the cloud keeps the messages and
// commands of one device in order (one lane per device), an agent or gateway keeps its own VPN
// commands in order (a single lane).

/**
 * Runs tasks one at a time in arrival order, so that two VPN commands for one device never
 * interleave: a connect that arrives while a disconnect runs starts only after it has finished.
 * A failing task does not stop the ones queued after it.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private waiting = 0;

  /** Tasks queued or running. */
  get size(): number {
    return this.waiting;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    this.waiting++;
    const result = this.tail.then(task);
    this.tail = result.then(
      () => this.settle(),
      () => this.settle(),
    );
    return result;
  }

  /** Resolves once every task queued so far has settled. */
  async drained(): Promise<void> {
    while (this.waiting > 0) await this.tail;
  }

  private settle(): void {
    this.waiting--;
  }
}

/**
 * One SerialQueue per key: tasks of one key run one at a time in arrival order, different keys
 * in parallel. Used so the messages of one device are applied in the order they came (and
 * commands to one device never interleave) without a global lock. A key's lane is dropped as
 * soon as it has nothing left to run, so the map holds only busy keys.
 */
export class KeyedSerialQueue {
  private readonly lanes = new Map<string, SerialQueue>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = new SerialQueue();
      this.lanes.set(key, lane);
    }
    const queued = lane;
    const result = queued.run(task);
    // Registered after the lane's own bookkeeping on `result`, so `size` is already updated here.
    const release = (): void => {
      if (queued.size === 0 && this.lanes.get(key) === queued) this.lanes.delete(key);
    };
    void result.then(release, release);
    return result;
  }

  /** Keys with a task queued or running. */
  get size(): number {
    return this.lanes.size;
  }
}
