import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsBoolean,
  IsIn,
  IsOptional,
  IsString,
  MaxLength,
} from 'class-validator';
import { ListQueryDto, ListResultDto, UpdatableEntityDto } from '../../common/list';
import { OptlockField } from '../../common/optlock';
import { DELIVERY_STATUSES, type DeliveryStatus, type WebhookDelivery } from '../webhook-delivery.entity';
import { WEBHOOK_EVENT_TYPES, type Webhook, type WebhookEventType } from '../webhook.entity';

export const MAX_WEBHOOK_URL_LENGTH = 2048;

const EVENTS_MESSAGE = `each value in events must be one of: ${WEBHOOK_EVENT_TYPES.join(', ')}`;

export class CreateWebhookDto {
  @ApiProperty({
    example: 'https://hooks.example.com/vpn',
    maxLength: MAX_WEBHOOK_URL_LENGTH,
    description: 'http(s), no credentials; private and loopback hosts are refused (docs/webhooks.md)',
  })
  @IsString()
  @MaxLength(MAX_WEBHOOK_URL_LENGTH)
  url: string;

  @ApiProperty({ enum: WEBHOOK_EVENT_TYPES, isArray: true, minItems: 1 })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENT_TYPES.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENT_TYPES, { each: true, message: EVENTS_MESSAGE })
  events: WebhookEventType[];

  @ApiPropertyOptional({ maxLength: 1024, default: '' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  description?: string;

  @ApiPropertyOptional({ default: true })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}

export class UpdateWebhookDto {
  @ApiPropertyOptional({ maxLength: MAX_WEBHOOK_URL_LENGTH })
  @IsOptional()
  @IsString()
  @MaxLength(MAX_WEBHOOK_URL_LENGTH)
  url?: string;

  @ApiPropertyOptional({ enum: WEBHOOK_EVENT_TYPES, isArray: true, minItems: 1 })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENT_TYPES.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENT_TYPES, { each: true, message: EVENTS_MESSAGE })
  events?: WebhookEventType[];

  @ApiPropertyOptional({ maxLength: 1024 })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  description?: string;

  @ApiPropertyOptional({ description: 'true re-enables an endpoint the server disabled after a 410' })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  @OptlockField('The optlock value last read')
  optlock: number;
}

export class WebhookListQueryDto extends ListQueryDto {}

export class WebhookDto extends UpdatableEntityDto {
  @ApiProperty()
  url: string;

  @ApiProperty({ enum: WEBHOOK_EVENT_TYPES, isArray: true })
  events: WebhookEventType[];

  @ApiProperty()
  description: string;

  @ApiProperty()
  enabled: boolean;

  @ApiProperty({
    enum: ['ENDPOINT_GONE'],
    nullable: true,
    type: String,
    description: 'ENDPOINT_GONE: the receiver answered 410 Gone and the server disabled the webhook',
  })
  disabledReason: string | null;

  @ApiProperty({ nullable: true, type: Date })
  disabledOn: Date | null;
}

export class CreatedWebhookDto extends WebhookDto {
  @ApiProperty({ description: 'The signing secret (whsec_…), shown only in this response' })
  secret: string;
}

export class WebhookListDto extends ListResultDto {
  @ApiProperty({ type: [WebhookDto] })
  items: WebhookDto[];
}

export class DeliveryListQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ enum: DELIVERY_STATUSES })
  @IsOptional()
  @IsIn(DELIVERY_STATUSES)
  status?: DeliveryStatus;
}

export class WebhookDeliveryDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ format: 'uuid' })
  webhookId: string;

  @ApiProperty({ description: 'The webhook-id header: the same on every attempt' })
  messageId: string;

  @ApiProperty({ nullable: true, type: String, description: 'The fleet event id; null for webhook.test' })
  eventId: string | null;

  @ApiProperty({ example: 'vpn.connected' })
  eventType: string;

  @ApiProperty({ enum: DELIVERY_STATUSES })
  status: DeliveryStatus;

  @ApiProperty()
  attempts: number;

  @ApiProperty({ nullable: true, type: Date, description: 'When the next attempt is due; null once final' })
  nextAttemptOn: Date | null;

  @ApiProperty({ nullable: true, type: Date })
  lastAttemptOn: Date | null;

  @ApiProperty({ nullable: true, type: Number })
  lastResponseCode: number | null;

  @ApiProperty({ nullable: true, type: String })
  lastError: string | null;

  @ApiProperty({ nullable: true, type: Date })
  deliveredOn: Date | null;

  @ApiProperty()
  createdOn: Date;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'The body sent: {type, timestamp, data}',
  })
  payload: Record<string, unknown>;
}

export class WebhookDeliveryListDto extends ListResultDto {
  @ApiProperty({ type: [WebhookDeliveryDto] })
  items: WebhookDeliveryDto[];
}

export function toWebhookDto(w: Webhook): WebhookDto {
  return {
    id: w.id,
    scopeId: w.scopeId,
    url: w.url,
    events: w.events,
    description: w.description,
    enabled: w.enabled,
    disabledReason: w.disabledReason,
    disabledOn: w.disabledOn,
    createdOn: w.createdOn,
    createdBy: w.createdBy,
    modifiedOn: w.modifiedOn,
    modifiedBy: w.modifiedBy,
    optlock: w.optlock,
  };
}

const FINAL: DeliveryStatus[] = ['DELIVERED', 'FAILED', 'CANCELLED'];

export function toDeliveryDto(d: WebhookDelivery): WebhookDeliveryDto {
  return {
    id: d.id,
    webhookId: d.webhookId,
    messageId: d.messageId,
    eventId: d.eventId,
    eventType: d.eventType,
    status: d.status,
    attempts: d.attempts,
    nextAttemptOn: FINAL.includes(d.status) ? null : d.nextAttemptOn,
    lastAttemptOn: d.lastAttemptOn,
    lastResponseCode: d.lastResponseCode,
    lastError: d.lastError,
    deliveredOn: d.deliveredOn,
    createdOn: d.createdOn,
    payload: JSON.parse(d.payload) as Record<string, unknown>,
  };
}
