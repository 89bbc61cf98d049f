import { Account } from '../accounts/account.entity';
import { ApiInstance } from '../instances/api-instance.entity';
import { ApiKey } from '../apikeys/api-key.entity';
import { AccessToken } from '../auth/access-token.entity';
import { LoginFailure } from '../auth/login-failure.entity';
import { User } from '../users/user.entity';
import { Device } from '../devices/device.entity';
import { DeviceEvent } from '../devices/device-event.entity';
import { DeviceOperation } from '../vpn/device-operation.entity';
import { DeviceVpnStatus } from '../vpn/device-vpn-status.entity';
import { Gateway } from '../gateways/gateway.entity';
import { GatewayPeer } from '../gateways/gateway-peer.entity';
import { VpnSession } from '../sessions/vpn-session.entity';
import { EventStreamTicket } from '../events/event-stream-ticket.entity';
import { Webhook } from '../webhooks/webhook.entity';
import { WebhookDelivery, WebhookDispatchCursor } from '../webhooks/webhook-delivery.entity';

/** Every TypeORM entity of the API; each domain adds its own here. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- TypeORM's own type for entity classes
export const ENTITIES: Function[] = [
  Account,
  User,
  ApiKey,
  AccessToken,
  LoginFailure,
  Device,
  DeviceEvent,
  DeviceVpnStatus,
  DeviceOperation,
  Gateway,
  GatewayPeer,
  VpnSession,
  EventStreamTicket,
  Webhook,
  WebhookDelivery,
  WebhookDispatchCursor,
  ApiInstance,
];
