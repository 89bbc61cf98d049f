// Creates simulated devices through the cloud's REST API (README, REST conventions) and fetches their MQTT
// credentials, so a load test needs nothing but an API URL and a token or API key.
import type { DeviceCredentials } from './device-credentials';

export interface ProvisionOptions {
  apiUrl: string;
  /** An access token (the `tokenId` of POST /v1/authentication/user), or: */
  token?: string;
  /** an integrator API key, exchanged through POST /v1/authentication/apikey. */
  apiKey?: string;
  clientIds: readonly string[];
  concurrency: number;
  onProgress?: (done: number) => void;
}

export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
}

export async function provisionDevices(options: ProvisionOptions): Promise<DeviceCredentials[]> {
  const api = new CloudApi(options.apiUrl, await bearerToken(options));
  const results: DeviceCredentials[] = new Array<DeviceCredentials>(options.clientIds.length);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < options.clientIds.length) {
      const index = next++;
      results[index] = await provisionOne(api, options.clientIds[index]);
      options.onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  return results;
}

async function provisionOne(api: CloudApi, clientId: string): Promise<DeviceCredentials> {
  let device = await api.call<{ id: string }>('POST', '/v1/_/devices', { clientId }, [409]);
  if (device === undefined) {
    // Left over from an earlier run: reuse it; new credentials replace the old ones.
    const list = await api.call<{ items: { id: string }[] }>(
      'GET',
      `/v1/_/devices?clientId=${encodeURIComponent(clientId)}`,
    );
    device = list?.items[0];
    if (device === undefined) throw new ProvisionError(`device ${clientId} exists but cannot be found`);
  }
  const creds = await api.call<{ username: string; password: string; account?: string }>(
    'POST',
    `/v1/_/devices/${encodeURIComponent(device.id)}/credentials`,
    {},
  );
  if (typeof creds?.username !== 'string' || typeof creds.password !== 'string') {
    throw new ProvisionError(`credentials of ${clientId}: response has no username/password`);
  }
  const result: DeviceCredentials = { clientId, username: creds.username, password: creds.password };
  if (typeof creds.account === 'string') result.account = creds.account;
  return result;
}

async function bearerToken(options: ProvisionOptions): Promise<string> {
  if (options.token !== undefined) return options.token;
  if (options.apiKey === undefined) throw new ProvisionError('provisioning needs --token or --api-key');
  const api = new CloudApi(options.apiUrl, undefined);
  const auth = await api.call<{ tokenId: string }>('POST', '/v1/authentication/apikey', {
    apiKey: options.apiKey,
  });
  if (typeof auth?.tokenId !== 'string') throw new ProvisionError('API key login returned no tokenId');
  return auth.tokenId;
}

class CloudApi {
  constructor(
    private readonly baseUrl: string,
    private readonly token: string | undefined,
  ) {}

  /** The parsed JSON body, or undefined for a status listed in `tolerated`; any other non-2xx throws. */
  async call<T>(
    method: string,
    path: string,
    body?: unknown,
    tolerated: number[] = [],
  ): Promise<T | undefined> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    // Appended, not resolved: an API behind a path prefix (https://host/cloud) keeps its prefix.
    const res = await fetch(`${this.baseUrl.replace(/\/+$/, '')}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (tolerated.includes(res.status)) return undefined;
    if (!res.ok) {
      // The API's error body is {result, error, details}; show it, it never holds secrets.
      throw new ProvisionError(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
    }
    return (text === '' ? undefined : JSON.parse(text)) as T | undefined;
  }
}
