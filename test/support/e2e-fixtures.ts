/**
 * Small factories and bounded waits for the e2e tier, over HTTP against an API
 * process. Names are random so that files sharing one broker (TEST_MQTT_URL)
 * never meet on a topic: each file works in a child account of its own.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'mqtt';
import request from 'supertest';
import {
  restartApiProcess,
  startAgentProcess,
  stopStrayProcesses,
  type ApiProcess,
  type LoggedProcess,
} from './processes';
import type { VpnStatusBody } from './device-factories';
import { TEST_ADMIN_PASSWORD } from './test-api';
import { eventually, holds } from './eventually';
import type { components } from '../generated/api-types';

export type RoleName = 'admin' | 'operator' | 'viewer';

export const suffix = (): string => randomBytes(4).toString('hex');

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Signs in and returns the access token (tokenId). */
export async function login(
  url: string,
  username = 'admin',
  password = TEST_ADMIN_PASSWORD,
): Promise<string> {
  const res = await request(url).post('/v1/authentication/user').send({ username, password });
  if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${res.text}`);
  return res.body.tokenId as string;
}

export interface E2eUser {
  id: string;
  username: string;
  token: string;
}

/** Creates a user with `role` in `scopeId` and signs it in. */
export async function createUser(
  url: string,
  token: string,
  scopeId: string,
  role: RoleName,
): Promise<E2eUser> {
  const username = `e2e-${role}-${suffix()}`;
  const password = `pw-${randomBytes(12).toString('hex')}`;
  const res = await request(url)
    .post(`/v1/${scopeId}/users`)
    .set(bearer(token))
    .send({ username, password, role });
  if (res.status !== 201) throw new Error(`create user: ${res.status} ${res.text}`);
  return { id: res.body.id as string, username, token: await login(url, username, password) };
}

export interface E2eTenant {
  accountId: string;
  accountName: string;
  admin: E2eUser;
}

/** A child account of `parentScope` (random, topic-safe name) with an admin user of its own. */
export async function createTenant(url: string, token: string, parentScope = '_'): Promise<E2eTenant> {
  const res = await request(url)
    .post(`/v1/${parentScope}/accounts`)
    .set(bearer(token))
    .send({ name: `e2e-${suffix()}` });
  if (res.status !== 201) throw new Error(`create account: ${res.status} ${res.text}`);
  const accountId = res.body.id as string;
  return {
    accountId,
    accountName: res.body.name as string,
    admin: await createUser(url, token, accountId, 'admin'),
  };
}

export interface DeviceCredentials {
  username: string;
  password: string;
  clientId: string;
  account: string;
}

export interface E2eDevice {
  id: string;
  clientId: string;
  tunnelAddress: string;
  credentials: DeviceCredentials;
}

/** Registers a device in the caller's own account and issues its MQTT credentials. */
export async function createDevice(
  url: string,
  token: string,
  clientId = `gw-${suffix()}`,
): Promise<E2eDevice> {
  const created = await request(url).post('/v1/_/devices').set(bearer(token)).send({ clientId });
  if (created.status !== 201) throw new Error(`create device: ${created.status} ${created.text}`);
  const id = created.body.id as string;
  const creds = await request(url).post(`/v1/_/devices/${id}/credentials`).set(bearer(token));
  if (creds.status !== 201) throw new Error(`device credentials: ${creds.status} ${creds.text}`);
  return {
    id,
    clientId,
    tunnelAddress: created.body.tunnelAddress as string,
    credentials: creds.body as DeviceCredentials,
  };
}

/**
 * Starts a real agent for `device` on the API's broker and waits for its first
 * BIRTH. Fast defaults (short tunnel delay and reconnect period); `args` win.
 */
export function startDeviceAgent(
  api: ApiProcess,
  device: E2eDevice,
  args: string[] = [],
): Promise<LoggedProcess> {
  return startAgentProcess({
    broker: api.mqttUrl,
    account: device.credentials.account,
    clientId: device.credentials.clientId,
    username: device.credentials.username,
    password: device.credentials.password,
    args: ['--connect-delay-ms', '20', '--reconnect-period-ms', '200', ...args],
  });
}

export interface DeviceBody {
  id: string;
  clientId: string;
  connectionStatus: string;
  [key: string]: unknown;
}

export async function getDevice(url: string, token: string, deviceId: string): Promise<DeviceBody> {
  const res = await request(url).get(`/v1/_/devices/${deviceId}`).set(bearer(token));
  if (res.status !== 200) throw new Error(`get device: ${res.status} ${res.text}`);
  return res.body as DeviceBody;
}

/** Polls GET device until its connectionStatus (MQTT lifecycle) is `status`. */
export function waitForConnectionStatus(
  url: string,
  token: string,
  deviceId: string,
  status: 'CONNECTED' | 'DISCONNECTED' | 'MISSING' | 'NEVER_CONNECTED',
  timeoutMs = 15_000,
): Promise<DeviceBody> {
  return eventually(
    async () =>
      holds(
        `device ${deviceId} to be ${status}`,
        await getDevice(url, token, deviceId),
        (d) => d.connectionStatus === status,
      ),
    timeoutMs,
    100,
  );
}

export type { VpnStatusBody };

export async function getVpnStatus(url: string, token: string, deviceId: string): Promise<VpnStatusBody> {
  const res = await request(url).get(`/v1/_/devices/${deviceId}/vpn`).set(bearer(token));
  if (res.status !== 200) throw new Error(`get vpn status: ${res.status} ${res.text}`);
  return res.body as VpnStatusBody;
}

export type OperationBody = components['schemas']['DeviceOperationDto'];

/** The device's operations, newest first. */
export async function listOperations(url: string, token: string, deviceId: string): Promise<OperationBody[]> {
  const res = await request(url).get(`/v1/_/devices/${deviceId}/operations`).set(bearer(token));
  if (res.status !== 200) throw new Error(`list operations: ${res.status} ${res.text}`);
  return res.body.items as OperationBody[];
}

export type DeviceEventBody = components['schemas']['DeviceEventDto'];

/** The device's lifecycle and status events, newest first. */
export async function listEvents(url: string, token: string, deviceId: string): Promise<DeviceEventBody[]> {
  const res = await request(url).get(`/v1/_/devices/${deviceId}/events?limit=500`).set(bearer(token));
  if (res.status !== 200) throw new Error(`list events: ${res.status} ${res.text}`);
  return res.body.items as DeviceEventBody[];
}

/** The user id inside an access token (JWT `sub`), to compare with `requestedBy`. */
export function userIdOf(token: string): string {
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as {
    sub: string;
  };
  return claims.sub;
}

/**
 * Processes a test file started, stopped together in afterAll whatever happened:
 * agents first (clean stop, in parallel), then API processes (which drop their storage).
 */
export class ProcessGroup {
  private readonly agents = new Set<LoggedProcess>();
  private readonly apis = new Set<ApiProcess>();

  agent<T extends LoggedProcess>(p: T): T {
    this.agents.add(p);
    return p;
  }

  api(p: ApiProcess): ApiProcess {
    this.apis.add(p);
    return p;
  }

  /** Restarts `p` on its own storage (see restartApiProcess); the new process is tracked instead. */
  async restartApi(p: ApiProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<ApiProcess> {
    this.apis.delete(p);
    return this.api(await restartApiProcess(p, signal));
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.agents].map((a) => a.stop('SIGTERM', 5000)));
    await Promise.allSettled([...this.apis].map((a) => a.destroy()));
    this.agents.clear();
    this.apis.clear();
    await stopStrayProcesses();
  }
}

/** Asserts the documented error body `{result, error, details}` and its HTTP status. */
export function expectErrorBody(res: request.Response, status: number, result: string): void {
  expect({ status: res.status, result: res.body?.result }).toEqual({ status, result });
  expect(Object.keys(res.body as object).sort()).toEqual(['details', 'error', 'result']);
}

/**
 * Ends the persistent session `clientId` left in a shared broker (connect once with
 * a clean session), so that it does not queue messages for a process that is gone.
 */
export async function clearMqttSession(brokerUrl: string, clientId: string): Promise<void> {
  const client = connect(brokerUrl, { clientId, clean: true, reconnectPeriod: 0, connectTimeout: 5000 });
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
  } finally {
    await client.endAsync(true);
  }
}

/** `promise`, or an error naming `what` once `timeoutMs` has passed. */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
