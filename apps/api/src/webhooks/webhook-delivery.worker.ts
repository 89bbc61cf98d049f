import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { WebhookDispatcher } from './webhook-dispatcher';
import { WebhookOutbox, type ClaimedDelivery } from './webhook-outbox';
import { WebhookSecretBox } from './webhook-secret';
import { sendWebhook, type SendResult } from './webhook-sender';

/** Extra lease beyond the attempt timeout before another instance may take a SENDING row over. */
const LEASE_MARGIN_MS = 30_000;

/**
 * Runs webhooks in every API instance: each tick dispatches new fleet events into the outbox and
 * sends the deliveries that are due, up to WEBHOOK_CONCURRENCY at a time. On shutdown it stops
 * claiming, cuts the attempts in flight and gives them back (PENDING, due now, same webhook-id),
 * so the next instance to run sends them again.
 */
@Injectable()
export class WebhookDeliveryWorker implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('WebhookDeliveryWorker');
  private readonly box: WebhookSecretBox;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly shutdown = new AbortController();
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private again = false;
  private stopped = true;

  constructor(
    private readonly dispatcher: WebhookDispatcher,
    private readonly outbox: WebhookOutbox,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.box = new WebhookSecretBox(config.webhooks.secretKey ?? config.jwtSecret);
  }

  onApplicationBootstrap(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    this.shutdown.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Runs a tick soon (e.g. after a test delivery was enqueued). */
  nudge(): void {
    if (this.stopped) return;
    if (this.ticking) this.again = true;
    else this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delayMs);
    this.timer.unref();
  }

  private tick(): Promise<void> {
    this.ticking ??= this.runTick().finally(() => {
      this.ticking = undefined;
      if (this.stopped) return;
      const rerun = this.again;
      this.again = false;
      this.schedule(rerun ? 0 : this.config.webhooks.pollIntervalMs);
    });
    return this.ticking;
  }

  private async runTick(): Promise<void> {
    try {
      await this.dispatcher.dispatch();
      if (this.stopped) return;
      const free = this.config.webhooks.concurrency - this.inFlight.size;
      const claimed = await this.outbox.claimDue(free, this.config.webhooks.timeoutMs + LEASE_MARGIN_MS);
      for (const claim of claimed) this.track(this.attempt(claim));
      // A full batch: there may be more due, take them as soon as a slot frees up.
      if (claimed.length && claimed.length === free) this.again = true;
    } catch (err) {
      this.logger.error({ err }, 'webhook tick failed');
    }
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => {
      this.inFlight.delete(p);
      if (this.again) this.nudge();
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
