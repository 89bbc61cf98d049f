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
