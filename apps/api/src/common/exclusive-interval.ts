import type { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';

/**
 * A periodic job that runs in one API instance at a time: each tick takes a session-level
 * Postgres advisory lock for the length of the job (skipping the tick when another instance
 * holds it), never overlaps itself, and waits for a running job on stop. State lives in the
 * database, so a job interrupted by a restart simply runs again on the next tick.
 */
export class ExclusiveInterval {
  private timer?: NodeJS.Timeout;
  private running?: Promise<boolean>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly lockKey: number,
    private readonly intervalMs: number,
    private readonly job: () => Promise<void>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Runs the job now unless it is running here or elsewhere; true when it ran. */
  runOnce(): Promise<boolean> {
    this.running ??= this.locked().finally(() => (this.running = undefined));
    return this.running;
  }

  private async locked(): Promise<boolean> {
    const runner = this.dataSource.createQueryRunner();
    try {
      await runner.connect();
      const [row] = (await runner.query('SELECT pg_try_advisory_lock($1) AS ok', [this.lockKey])) as Array<{
        ok: boolean;
      }>;
      if (!row.ok) return false;
      try {
        await this.job();
        return true;
      } finally {
        await runner.query('SELECT pg_advisory_unlock($1)', [this.lockKey]);
      }
    } catch (err) {
      this.logger.error({ err }, 'periodic job failed');
      return false;
    } finally {
      await runner.release();
    }
  }
}
