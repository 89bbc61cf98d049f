import type { Logger } from '@nestjs/common';

/** One line per sender and this long at most; the next line says how many were held back. */
const WINDOW_MS = 60_000;
/** Senders remembered at once; the oldest are forgotten first (a flood of ids cannot grow it). */
const MAX_SENDERS = 10_000;

/**
 * Logs what is wrong with a device's or gateway's message in one line without a stack, and at
 * most once a minute per sender: a device repeating a malformed message cannot flood the log.
 */
export class DeviceMessageLog {
  private readonly last = new Map<string, { at: number; held: number }>();

  constructor(private readonly logger: Logger) {}

  warn(sender: string, fields: Record<string, unknown>, message: string, err?: unknown): void {
    const now = Date.now();
    const seen = this.last.get(sender);
    if (seen && now - seen.at < WINDOW_MS) {
      seen.held++;
      return;
    }
    this.last.delete(sender);
    if (this.last.size >= MAX_SENDERS) {
      const oldest = this.last.keys().next().value;
      if (oldest !== undefined) this.last.delete(oldest);
    }
    this.last.set(sender, { at: now, held: 0 });
    const reason =
      err === undefined ? {} : { error: err instanceof Error ? err.message : JSON.stringify(err) };
    const held = seen?.held ? { heldBack: seen.held } : {};
    this.logger.warn({ sender, ...fields, ...reason, ...held }, message);
  }
}
