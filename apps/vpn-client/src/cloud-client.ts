// Every call the VPN client makes to the cloud API, with timeouts, and failures turned into one
// typed error (HTTP status and the cloud's `{result, error, details}` body, or "unreachable").

/** A failed cloud call. `httpStatus` is undefined when no answer came (refused, DNS, timeout). */
export class CloudError extends Error {
  override readonly name = 'CloudError';

  constructor(
    message: string,
    readonly httpStatus: number | undefined,
    /** The cloud's error code, e.g. `DEVICE_NOT_CONNECTED`. */
    readonly result: string | undefined,
    /** The cloud's human-readable reason. */
    readonly reason: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  get unreachable(): boolean {
    return this.httpStatus === undefined;
  }
}

/** A bearer token and the IXON-style sector the portal named, forwarded as `Api-Sector`. */
export interface Credentials {
  token: string;
  sector?: string;
}

export interface CallOptions {
  /** Aborts the call (e.g. the engineer disconnected meanwhile); rejects with the signal's reason. */
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface AuthInfo {
  scopeId: string;
  role: string;
  permissions: string[];
}

export interface ApiKeyToken {
  tokenId: string;
  expiresOn: string | undefined;
}

export interface DeviceVpnStatus {
  connected: boolean;
  ipAddress: string;
  status: string;
  statusCode: string;
}

/** The session as the cloud sends it; checked field by field before use (see session.ts). */
export type SessionBody = Record<string, unknown>;

const DEFAULT_TIMEOUT_MS = 10_000;
/** The cloud waits up to `timeout` for the device; the HTTP call may take that plus its own work. */
const DEVICE_WAIT_MARGIN_MS = 10_000;

export class CloudClient {
  constructor(
    private readonly baseUrl: string,
    private readonly defaultTimeoutMs = DEFAULT_TIMEOUT_MS,
  ) {}

  async authInfo(credentials: Credentials, options: CallOptions = {}): Promise<AuthInfo> {
    const body = await this.call('GET', '/v1/authentication/info', credentials, undefined, options);
    const info = asObject(body);
    return {
      scopeId: text(info.scopeId),
      role: text(info.role),
      permissions: Array.isArray(info.permissions) ? info.permissions.map(String) : [],
    };
  }

  async loginApiKey(
    apiKey: string,
    sector: string | undefined,
    options: CallOptions = {},
  ): Promise<ApiKeyToken> {
    const body = asObject(
      await this.call('POST', '/v1/authentication/apikey', { token: '', sector }, { apiKey }, options),
    );
    if (typeof body.tokenId !== 'string' || body.tokenId === '') {
      throw new CloudError(
        'the cloud answered the API key sign-in without a tokenId',
        200,
        undefined,
        undefined,
      );
    }
    return {
      tokenId: body.tokenId,
      expiresOn: typeof body.expiresOn === 'string' ? body.expiresOn : undefined,
    };
  }

  /** Makes the cloud bring the device's own VPN up (to its gateway), waiting up to `deviceTimeoutMs`. */
  async connectDeviceVpn(
    credentials: Credentials,
    companyId: string,
    agentId: string,
    deviceTimeoutMs: number,
    options: CallOptions = {},
  ): Promise<DeviceVpnStatus> {
    const path = `${devicePath(companyId, agentId)}/vpn/_connect?timeout=${deviceTimeoutMs}`;
    const body = asObject(
      await this.call('POST', path, credentials, undefined, {
        timeoutMs: deviceTimeoutMs + DEVICE_WAIT_MARGIN_MS,
        ...options,
      }),
    );
    return {
      connected: body.connected === true,
      ipAddress: text(body.ipAddress),
      status: text(body.status),
      statusCode: text(body.statusCode),
    };
  }

  async openSession(
    credentials: Credentials,
    companyId: string,
    agentId: string,
    publicKey: string,
    options: CallOptions = {},
  ): Promise<SessionBody> {
    const path = `${devicePath(companyId, agentId)}/vpn/sessions`;
    return asObject(await this.call('POST', path, credentials, { publicKey }, options));
  }

  /** Authenticated by the session's ping token alone, so the session outlives the access token. */
  async pingSession(
    companyId: string,
    agentId: string,
    sessionId: string,
    pingToken: string,
    options: CallOptions = {},
  ): Promise<void> {
    const path = `${devicePath(companyId, agentId)}/vpn/sessions/${encodeURIComponent(sessionId)}/_ping`;
    await this.call('POST', path, undefined, { pingToken }, options);
  }

  async closeSession(
    credentials: Credentials,
    companyId: string,
    agentId: string,
    sessionId: string,
    options: CallOptions = {},
  ): Promise<void> {
    const path = `${devicePath(companyId, agentId)}/vpn/sessions/${encodeURIComponent(sessionId)}`;
    await this.call('DELETE', path, credentials, undefined, options);
  }

  private async call(
    method: string,
    path: string,
    credentials: Credentials | undefined,
    body: unknown,
    options: CallOptions,
  ): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (credentials !== undefined && credentials.token !== '')
      headers.authorization = `Bearer ${credentials.token}`;
    if (credentials?.sector !== undefined) headers['api-sector'] = credentials.sector;
    if (body !== undefined) headers['content-type'] = 'application/json';
    // The path only: the base URL is in every message already and paths carry no secrets.
    const what = `${method} ${path.replace(/\?.*$/, '')}`;
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        redirect: 'error',
      });
      text = await response.text();
    } catch (err) {
      options.signal?.throwIfAborted();
      const reason = timeout.aborted
        ? `no answer from ${this.baseUrl} within ${timeoutMs} ms`
        : `${this.baseUrl} could not be reached (${networkReason(err)})`;
      throw new CloudError(`${what}: ${reason}`, undefined, undefined, undefined, { cause: err });
    }
    if (!response.ok) throw errorFromResponse(what, response.status, text);
    if (text === '') return {};
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new CloudError(
        `${what}: the cloud answered ${response.status} with a body that is not JSON`,
        response.status,
        undefined,
        undefined,
      );
    }
  }
}

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function devicePath(companyId: string, agentId: string): string {
  return `/v1/${encodeURIComponent(companyId)}/devices/${encodeURIComponent(agentId)}`;
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CloudError(
      'the cloud answered with something other than a JSON object',
      200,
      undefined,
      undefined,
    );
  }
  return value as Record<string, unknown>;
}

/** Parses the cloud's `{result, error, details}`; any other body is quoted (shortened). */
export function errorFromResponse(what: string, status: number, text: string): CloudError {
  let result: string | undefined;
  let reason: string | undefined;
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === 'object' && body !== null) {
      const { result: r, error: e, details: d } = body as Record<string, unknown>;
      if (typeof r === 'string') result = r;
      const parts = [e, d].filter((p): p is string => typeof p === 'string' && p !== '');
      if (parts.length > 0) reason = parts.join(': ');
    }
  } catch {
    // not JSON: quoted below
  }
  if (reason === undefined && text.trim() !== '') reason = text.trim().slice(0, 200);
  const label = result === undefined ? `${status}` : `${status} ${result}`;
  return new CloudError(
    `${what}: ${label}${reason === undefined ? '' : ` (${reason})`}`,
    status,
    result,
    reason,
  );
}

function networkReason(err: unknown): string {
  const cause = err instanceof Error ? (err.cause ?? err) : err;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return typeof code === 'string' && !cause.message.includes(code)
      ? `${code}: ${cause.message}`
      : cause.message;
  }
  return String(cause);
}
