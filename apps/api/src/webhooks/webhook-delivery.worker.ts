import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { WebhookDispatcher } from './webhook-dispatcher';
import { WebhookOutboxRepository, type ClaimedDelivery } from './webhook-outbox.repository';
import { WebhookSecretBox } from './webhook-secret';
import { sendWebhook, type SendResult } from './webhook-sender';

/** Extra lease beyond the attempt timeout before another instance may take a SENDING row over. */
const LEASE_MARGIN_MS = 30_000;

/**
 * Runs webhooks in every API instance. Each tick (every WEBHOOK_POLL_INTERVAL_MS) dispatches new
 * fleet events into the outbox and claims what is due. Between ticks a send pump keeps up to
 * WEBHOOK_CONCURRENCY attempts in flight: while due work may remain (the last claim filled every
 * free slot, or deliveries were just inserted), a finished attempt claims the free slots again at
 * once; a claim that comes back short ends the burst until the next tick or wake-up. On shutdown it
 * stops claiming, cuts the attempts in flight and gives them back (PENDING, due now, same
 * webhook-id), so the next instance to run sends them again.
 */
@Injectable()
export class WebhookDeliveryWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('WebhookDeliveryWorker');
  private readonly box: WebhookSecretBox;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly shutdown = new AbortController();
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  /** The claim loop, while it runs (one at a time per instance). */
  private pumping?: Promise<void>;
  /** Due deliveries may remain beyond what was claimed: claim again as soon as a slot is free. */
  private mayHaveMore = false;
  private stopped = true;

  constructor(
    private readonly dispatcher: WebhookDispatcher,
    private readonly outbox: WebhookOutboxRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.box = new WebhookSecretBox(config.webhooks.secretKey ?? config.jwtSecret);
    // New deliveries are claimed right after the dispatcher committed them, not at the next tick.
    dispatcher.onDeliveriesCreated(() => this.nudge());
  }

  onApplicationBootstrap(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    await this.pumping;
    this.shutdown.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Deliveries were enqueued (e.g. a test delivery, or by the dispatcher): claim them soon. */
  nudge(): void {
    if (this.stopped) return;
    this.mayHaveMore = true;
    this.pump();
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private tick(): Promise<void> {
    this.ticking ??= this.runTick().finally(() => {
      this.ticking = undefined;
      if (!this.stopped) this.schedule(this.config.webhooks.pollIntervalMs);
    });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    try {
      await this.dispatcher.dispatch();
    } catch (err) {
      this.logger.error({ err }, 'webhook dispatch failed');
    }
    // Retries come due and leases run out with time: look for them on every tick. The claims run
    // on their own (a backlog being worked off does not hold the next dispatch back).
    this.nudge();
  }

  /**
   * Starts the claim loop unless it is running. It claims the free slots while due work may
   * remain; every claim either fills all free slots (the loop then waits for an attempt to
   * finish) or comes back short (nothing more due now), so it never spins.
   */
  private pump(): void {
    if (this.pumping || this.stopped) return;
    if (!this.mayHaveMore || this.inFlight.size >= this.config.webhooks.concurrency) return;
    this.pumping = this.claimWhileDue().finally(() => {
      this.pumping = undefined;
      // A wake-up that came after the loop's last check.
      this.pump();
    });
  }

  private async claimWhileDue(): Promise<void> {
    const { concurrency, timeoutMs } = this.config.webhooks;
    while (this.mayHaveMore && !this.stopped) {
      const free = concurrency - this.inFlight.size;
      if (free <= 0) return; // a finishing attempt starts the loop again
      this.mayHaveMore = false;
      let claimed: ClaimedDelivery[];
      try {
        claimed = await this.outbox.claimDue(free, timeoutMs + LEASE_MARGIN_MS);
      } catch (err) {
        // Ends the burst; the next tick tries again.
        this.logger.error({ err }, 'claiming webhook deliveries failed');
        this.mayHaveMore = false;
        return;
      }
      for (const claim of claimed) this.track(this.attempt(claim));
      // Every free slot filled: there may be more due.
      if (claimed.length === free) this.mayHaveMore = true;
    }
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      this.pump();
    });
  }

  private async attempt(claim: ClaimedDelivery): Promise<void> {
    const result = await this.send(claim);
    try {
      await this.outbox.record(claim, result, this.config.webhooks.retryDelaysMs);
    } catch (err) {
      // The row keeps its SENDING lease and is claimed again once it runs out.
      this.logger.error({ err, deliveryId: claim.id }, 'recording a webhook attempt failed');
    }
    this.logger.debug(
      { deliveryId: claim.id, attempt: claim.attempts, statusCode: result.statusCode, error: result.error },
      'webhook attempt',
    );
  }

  private async send(claim: ClaimedDelivery): Promise<SendResult> {
    let secret: string;
    try {
      secret = this.box.open(claim.secretSealed, claim.webhookId);
    } catch {
      return {
        statusCode: null,
        error: 'signing secret cannot be decrypted (WEBHOOK_SECRET_KEY or JWT_SECRET changed)',
        abandoned: false,
      };
    }
    try {
      return await sendWebhook({
        url: claim.url,
        secret,
        messageId: claim.messageId,
        body: claim.payload,
        timeoutMs: this.config.webhooks.timeoutMs,
        allowPrivate: this.config.webhooks.allowPrivate,
        signal: this.shutdown.signal,
      });
    } catch (err) {
      return {
        statusCode: null,
        error: `send failed: ${err instanceof Error ? err.message : String(err)}`,
        abandoned: this.shutdown.signal.aborted,
      };
    }
  }
}
