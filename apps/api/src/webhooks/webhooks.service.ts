import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { Repository } from 'typeorm';
import { AppError } from '../common/app-error';
import { paginate, type ListResult } from '../common/list';
import { updateWithOptlock } from '../common/optlock';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { actorId, type Principal } from '../auth/principal';
import { AccountsRepository } from '../accounts/accounts.repository';
import { AddressRefused, resolveAllowed, urlHost } from './webhook-address';
import { WebhookDelivery } from './webhook-delivery.entity';
import { webhookBody, WebhookOutboxRepository } from './webhook-outbox.repository';
import { generateWebhookSecret, WebhookSecretBox } from './webhook-secret';
import { Webhook } from './webhook.entity';
import { WebhookDeliveryWorker } from './webhook-delivery.worker';
import {
  MAX_WEBHOOK_URL_LENGTH,
  toDeliveryDto,
  toWebhookDto,
  type CreatedWebhookDto,
  type CreateWebhookDto,
  type DeliveryListQueryDto,
  type UpdateWebhookDto,
  type WebhookDeliveryDto,
  type WebhookDto,
  type WebhookListQueryDto,
} from './dto/webhook.dto';

/** Webhook endpoints of one account: CRUD, their deliveries, test deliveries. */
@Injectable()
export class WebhooksService {
  private readonly box: WebhookSecretBox;

  constructor(
    @InjectRepository(Webhook) private readonly webhooks: Repository<Webhook>,
    @InjectRepository(WebhookDelivery) private readonly deliveries: Repository<WebhookDelivery>,
    private readonly accounts: AccountsRepository,
    private readonly outbox: WebhookOutboxRepository,
    private readonly worker: WebhookDeliveryWorker,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.box = new WebhookSecretBox(config.webhooks.secretKey ?? config.jwtSecret);
  }

  async list(scopeId: string, q: WebhookListQueryDto): Promise<ListResult<WebhookDto>> {
    return paginate(
      { from: this.webhooks, where: { scopeId }, order: { createdOn: 'ASC', id: 'ASC' } },
      q,
      toWebhookDto,
    );
  }

  async get(scopeId: string, id: string): Promise<WebhookDto> {
    return toWebhookDto(await this.find(scopeId, id));
  }

  /** Creates the endpoint; the signing secret is in this answer only. */
  async create(scopeId: string, dto: CreateWebhookDto, creator: Principal): Promise<CreatedWebhookDto> {
    const url = await this.checkUrl(dto.url);
    const id = randomUUID();
    const secret = generateWebhookSecret();
    const saved = await this.webhooks.manager.transaction(async (em) => {
      // The account row lock serialises creations in one account, so the quota holds under concurrency.
      await this.accounts.lockForUpdate(em, scopeId);
      const count = await em.getRepository(Webhook).count({ where: { scopeId } });
      if (count >= this.config.webhooks.maxPerAccount) {
        throw new AppError(
          'CONFLICT',
          'Webhook quota reached',
          `An account may have at most ${this.config.webhooks.maxPerAccount} webhooks`,
        );
      }
      return em.getRepository(Webhook).save(
        em.getRepository(Webhook).create({
          id,
          scopeId,
          url,
          events: dto.events,
          description: dto.description ?? '',
          enabled: dto.enabled ?? true,
          disabledReason: null,
          disabledOn: null,
          secretSealed: this.box.seal(secret, id),
          createdBy: actorId(creator),
          modifiedBy: actorId(creator),
        }),
      );
    });
    return { ...toWebhookDto(saved), secret };
  }

  async update(
    scopeId: string,
    id: string,
    dto: UpdateWebhookDto,
    principal: Principal,
  ): Promise<WebhookDto> {
    await this.find(scopeId, id);
    const changes: Partial<Webhook> = { modifiedBy: actorId(principal) };
    if (dto.url !== undefined) changes.url = await this.checkUrl(dto.url);
    if (dto.events !== undefined) changes.events = dto.events;
    if (dto.description !== undefined) changes.description = dto.description;
    if (dto.enabled !== undefined) {
      changes.enabled = dto.enabled;
      // Enabling clears why the server had disabled it; disabling by hand records no reason.
      changes.disabledReason = null;
      changes.disabledOn = dto.enabled ? null : new Date();
    }
    const updated = await updateWithOptlock(this.webhooks, { scopeId, id }, dto.optlock, changes, 'Webhook');
    return toWebhookDto(updated);
  }

  /** Deletes the endpoint and its deliveries (pending ones are never sent). */
  async delete(scopeId: string, id: string): Promise<void> {
    const result = await this.webhooks.delete({ scopeId, id });
    if (!result.affected) throw AppError.notFound('Webhook', `No webhook ${id} in this scope`);
  }

  async listDeliveries(
    scopeId: string,
    id: string,
    q: DeliveryListQueryDto,
  ): Promise<ListResult<WebhookDeliveryDto>> {
    await this.find(scopeId, id);
    const where = { webhookId: id, ...(q.status ? { status: q.status } : {}) };
    return paginate(
      {
        from: this.deliveries,
        where,
        // Deliveries of one dispatched page share created_on: the event id orders them.
        order: { createdOn: 'DESC', eventId: { direction: 'DESC', nulls: 'FIRST' }, id: 'DESC' },
      },
      q,
      toDeliveryDto,
    );
  }

  /** Enqueues a `webhook.test` delivery through the same outbox and returns it. */
  async sendTest(scopeId: string, id: string): Promise<WebhookDeliveryDto> {
    const webhook = await this.find(scopeId, id);
    if (!webhook.enabled) {
      throw AppError.conflict('Webhook is disabled', 'Enable the webhook (PUT enabled=true) to send to it');
    }
    const body = webhookBody('webhook.test', new Date().toISOString(), { webhookId: webhook.id, scopeId });
    const delivery = await this.outbox.enqueue(webhook.id, 'webhook.test', body);
    this.worker.nudge();
    return toDeliveryDto(delivery);
  }

  private async find(scopeId: string, id: string): Promise<Webhook> {
    const webhook = await this.webhooks.findOne({ where: { scopeId, id } });
    if (!webhook) throw AppError.notFound('Webhook', `No webhook ${id} in this scope`);
    return webhook;
  }

  /** The URL as stored (normalised), or 400 naming the rule it breaks. */
  private async checkUrl(raw: string): Promise<string> {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw AppError.invalid('Invalid webhook URL', 'url must be an absolute http or https URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw AppError.invalid('Invalid webhook URL', 'url must use http or https');
    }
    if (url.username || url.password) {
      throw AppError.invalid('Invalid webhook URL', 'url must not contain credentials');
    }
    if (url.href.length > MAX_WEBHOOK_URL_LENGTH) {
      throw AppError.invalid(
        'Invalid webhook URL',
        `url must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`,
      );
    }
    if (!this.config.webhooks.allowPrivate) {
      try {
        await resolveAllowed(urlHost(url), false);
      } catch (err) {
        if (!(err instanceof AddressRefused)) throw err;
        throw AppError.invalid(
          'Webhook URL not allowed',
          `${err.message}: webhooks must reach a public address`,
        );
      }
    }
    return url.href;
  }
}
