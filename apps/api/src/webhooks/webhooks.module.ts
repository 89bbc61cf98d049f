import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AccountsModule } from '../accounts/accounts.module';
import { AuthModule } from '../auth/auth.module';
import { EventsModule } from '../events/events.module';
import { WebhookDelivery } from './webhook-delivery.entity';
import { WebhookDeliveryWorker } from './webhook-delivery.worker';
import { WebhookDispatcher } from './webhook-dispatcher';
import { WebhookOutboxRepository } from './webhook-outbox.repository';
import { Webhook } from './webhook.entity';
import { WebhooksController } from './webhooks.controller';
import { WebhooksService } from './webhooks.service';

/** Signed webhooks (docs/webhooks.md): endpoints, the outbox, its dispatcher and sender. */
@Module({
  imports: [TypeOrmModule.forFeature([Webhook, WebhookDelivery]), AuthModule, EventsModule, AccountsModule],
  controllers: [WebhooksController],
  providers: [WebhooksService, WebhookOutboxRepository, WebhookDispatcher, WebhookDeliveryWorker],
})
export class WebhooksModule {}
