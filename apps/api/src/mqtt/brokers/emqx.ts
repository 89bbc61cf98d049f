import { Body, Controller, Headers, HttpCode, Inject, Injectable, Logger, Post } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { timingSafeEqual, createHash } from 'node:crypto';
import { edgeAclFilters, GATEWAY_APP_ID, VPN_APP_ID } from '@app/protocol';
import { AppError } from '../../common/app-error';
import { Public } from '../../common/public.decorator';
import { APP_CONFIG, type AppConfig } from '../../config/app-config';
import { BrokerCredentials, type CredentialChange } from '../broker-credentials';
import { EdgeCredentials } from '../edge-credentials';

/** The header EMQX's HTTP authenticator is configured to send (docs/brokers.md). */
export const EMQX_SECRET_HEADER = 'x-emqx-auth-secret';

export interface EmqxAclRule {
  permission: 'allow' | 'deny';
  action: 'publish' | 'subscribe' | 'all';
  topic: string;
}

export type EmqxAuthAnswer =
  { result: 'allow'; is_superuser: false; acl: EmqxAclRule[] } | { result: 'deny'; is_superuser: false };

const DENY: EmqxAuthAnswer = { result: 'deny', is_superuser: false };
const ATTEMPTS = 3;
const FIRST_BACKOFF_MS = 250;

/** Equal-time comparison of two secrets of any length (digests first, so lengths do not leak). */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/**
 * EMQX (≥ 5.8) asks this endpoint on every CONNECT (its HTTP authenticator). The answer carries
 * the client's whole ACL, ending with deny-all, so EMQX needs no call per publish. Internal: not
 * in the OpenAPI document (docs/brokers.md documents it), and 404 unless MQTT_BROKER_KIND=emqx.
 */
@ApiExcludeController()
@Public()
@Controller('internal/mqtt')
export class EmqxAuthController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly edge: EdgeCredentials,
  ) {}

  @Post('auth')
  @HttpCode(200)
  async auth(
    @Headers(EMQX_SECRET_HEADER) secret: string | undefined,
    @Body() body: unknown,
  ): Promise<EmqxAuthAnswer> {
    const emqx = this.config.emqx;
    if (this.config.mqttBrokerKind !== 'emqx' || !emqx) throw AppError.notFound('Route');
    if (typeof secret !== 'string' || !sameSecret(secret, emqx.authSecret)) {
      throw new AppError(
        'UNAUTHORIZED',
        'Missing or wrong EMQX auth secret',
        `Send the ${EMQX_SECRET_HEADER} header`,
      );
    }
    // Anything malformed is a deny, never an allow.
    if (typeof body !== 'object' || body === null) return DENY;
    const { clientid, username, password } = body as Record<string, unknown>;
    if (typeof clientid !== 'string' || typeof username !== 'string' || typeof password !== 'string')
      return DENY;
    if (clientid.length > 256 || username.length > 256 || password.length > 1024) return DENY;
    const identity = await this.edge.authenticate(clientid, username, Buffer.from(password, 'utf8'));
    // EMQX has no per-tenant session: only the full client id keeps tenants' sessions apart.
    if (!identity || clientid !== `${identity.account}:${identity.clientId}`) return DENY;
    const acl = edgeAclFilters(
      identity.account,
      identity.clientId,
      identity.kind === 'gateway' ? GATEWAY_APP_ID : VPN_APP_ID,
    );
    return {
      result: 'allow',
      is_superuser: false,
      acl: [
        ...acl.publish.map((topic): EmqxAclRule => ({ permission: 'allow', action: 'publish', topic })),
        ...acl.subscribe.map((topic): EmqxAclRule => ({ permission: 'allow', action: 'subscribe', topic })),
        // `#` does not match topics starting with `$`: deny those explicitly too.
        { permission: 'deny', action: 'all', topic: '#' },
        { permission: 'deny', action: 'all', topic: '$EDC/#' },
      ],
    };
  }
}

/**
 * Under EMQX, credentials are checked on each CONNECT, so a change only has to end the live
 * session: a disabled, deleted or re-issued client is kicked through EMQX's REST API
 * (`DELETE /api/v5/clients/{clientid}`), and its next CONNECT is checked anew.
 */
@Injectable()
export class EmqxBroker {
  private readonly logger = new Logger('EmqxBroker');

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    credentials: BrokerCredentials,
  ) {
    if (config.mqttBrokerKind === 'emqx') credentials.onChange((change) => this.apply(change));
  }

  private async apply(change: CredentialChange): Promise<void> {
    if (change.type === 'enabled') return;
    const emqx = this.config.emqx!;
    const clientid = `${change.account}:${change.clientId}`;
    const url = `${emqx.apiUrl}/api/v5/clients/${encodeURIComponent(clientid)}`;
    const auth = Buffer.from(`${emqx.apiKey}:${emqx.apiSecret}`).toString('base64');
    let lastError = '';
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        const res = await fetch(url, {
          method: 'DELETE',
          headers: { Authorization: `Basic ${auth}` },
          signal: AbortSignal.timeout(5000),
        });
        // 404: the client is not connected, nothing to cut.
        if (res.status === 204 || res.status === 200 || res.status === 404) return;
        lastError = `EMQX answered ${res.status}`;
      } catch (err) {
        lastError = (err as Error).message;
      }
      this.logger.warn(
        { clientid, change: change.type, attempt, error: lastError },
        'EMQX did not kick a client',
      );
      if (attempt < ATTEMPTS) await new Promise((r) => setTimeout(r, FIRST_BACKOFF_MS * 2 ** (attempt - 1)));
    }
    this.logger.error({ clientid, change: change.type, error: lastError }, 'EMQX did not kick a client');
    throw new AppError(
      'SERVICE_UNAVAILABLE',
      'The MQTT broker did not take the credential change',
      `EMQX REST API: ${lastError}. The database holds the change (new connections are checked ` +
        'against it); retry the request to cut the live session',
    );
  }
}
