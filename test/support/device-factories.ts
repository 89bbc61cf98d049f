import { randomBytes } from 'node:crypto';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import request from 'supertest';
import {
  birthMetrics,
  encodeKuraPayload,
  statusMetrics,
  Topics,
  type BirthCertificate,
  type KuraPayload,
  type VpnStatusReport,
} from '@app/protocol';
import { eventually, holds } from './eventually';
import { bearer, type ApiTarget } from './http';
import type { TestApi } from './test-api';
import type { components } from '../generated/api-types';

/**
 * Device factories over the HTTP API, and raw MQTT clients that speak for a device. Against a
 * shared broker (TEST_MQTT_URL) topics are shared with parallel test files: use random account
 * names and client ids (`uniqueClientId()`).
 */

/**
 * True when this API runs against a real broker (Mosquitto, TEST_MQTT_URL) instead of the embedded
 * aedes; an API started with `embeddedBroker: true` uses the embedded one even when it is set.
 */
export const usesExternalBroker = (api: TestApi): boolean => api.externalBroker;

export const uniqueClientId = (prefix = 'dev'): string => `${prefix}-${randomBytes(5).toString('hex')}`;

/**
 * Hand-written, not the generated DeviceDto: the spec types scopeId as nullable (shared by root
 * accounts), while a device always belongs to an account.
 */
export interface DeviceBody {
  id: string;
  scopeId: string;
  clientId: string;
  displayName: string;
  status: 'ENABLED' | 'DISABLED';
  connectionStatus: 'NEVER_CONNECTED' | 'CONNECTED' | 'DISCONNECTED' | 'MISSING';
  lastEventOn: string | null;
  modelId: string | null;
  serialNumber: string | null;
  firmwareVersion: string | null;
  connectionIp: string | null;
  applicationIds: string[];
  tunnelAddress: string;
  vpnPublicKey: string | null;
  mqttUsername: string | null;
  credentialsIssuedOn: string | null;
  createdOn: string;
  createdBy: string | null;
  modifiedOn: string;
  modifiedBy: string | null;
  optlock: number;
}

export type DeviceCredentials = components['schemas']['DeviceCredentialsDto'];

export type DeviceEventBody = components['schemas']['DeviceEventDto'];

/** Registers a device in `scope` (an account id or `_`); a random clientId unless given. */
export async function createDevice(
  api: ApiTarget,
  token: string,
  scope = '_',
  body: { clientId?: string; displayName?: string; status?: 'ENABLED' | 'DISABLED' } = {},
): Promise<DeviceBody> {
  const res = await request(api.url)
    .post(`/v1/${scope}/devices`)
    .set(bearer(token))
    .send({ clientId: uniqueClientId(), ...body });
  if (res.status !== 201) throw new Error(`createDevice: ${res.status} ${res.text}`);
  return res.body as DeviceBody;
}

export async function getDevice(
  api: ApiTarget,
  token: string,
  scope: string,
  id: string,
): Promise<DeviceBody> {
  const res = await request(api.url).get(`/v1/${scope}/devices/${id}`).set(bearer(token));
  if (res.status !== 200) throw new Error(`getDevice: ${res.status} ${res.text}`);
  return res.body as DeviceBody;
}

/** A device together with the MQTT credentials issued to it, ready for an agent to use. */
export interface DeviceWithCredentials extends DeviceBody {
  credentials: DeviceCredentials;
}

/** Registers a device in `scope` (as createDevice) and issues its MQTT credentials. */
export async function createDeviceWithCredentials(
  api: ApiTarget,
  token: string,
  scope = '_',
  body: Parameters<typeof createDevice>[3] = {},
): Promise<DeviceWithCredentials> {
  const device = await createDevice(api, token, scope, body);
  return { ...device, credentials: await issueCredentials(api, token, scope, device.id) };
}

/** Polls GET device until its connectionStatus (the MQTT lifecycle) is `status`. */
export function waitForConnectionStatus(
  api: ApiTarget,
  token: string,
  scope: string,
  deviceId: string,
  status: DeviceBody['connectionStatus'],
  timeoutMs = 15_000,
): Promise<DeviceBody> {
  return eventually(
    async () =>
      holds(
        `device ${deviceId} to be ${status}`,
        await getDevice(api, token, scope, deviceId),
        (d) => d.connectionStatus === status,
      ),
    timeoutMs,
    100,
  );
}

/** Issues (or rotates) the device's MQTT credentials. */
export async function issueCredentials(
  api: ApiTarget,
  token: string,
  scope: string,
  deviceId: string,
): Promise<DeviceCredentials> {
  const res = await request(api.url).post(`/v1/${scope}/devices/${deviceId}/credentials`).set(bearer(token));
  if (res.status !== 201) throw new Error(`issueCredentials: ${res.status} ${res.text}`);
  return res.body as DeviceCredentials;
}

/** The device's events, newest first. */
export async function listEvents(
  api: ApiTarget,
  token: string,
  scope: string,
  deviceId: string,
  query: Record<string, string | number | boolean> = {},
): Promise<{ items: DeviceEventBody[]; size: number; limitExceeded: boolean; totalCount?: number }> {
  const res = await request(api.url)
    .get(`/v1/${scope}/devices/${deviceId}/events`)
    .query(query)
    .set(bearer(token));
  if (res.status !== 200) throw new Error(`listEvents: ${res.status} ${res.text}`);
  return res.body;
}

export type OperationBody = components['schemas']['DeviceOperationDto'];

/** The device's operations, newest first (the API's default page). */
export async function listOperations(
  api: ApiTarget,
  token: string,
  scope: string,
  deviceId: string,
): Promise<OperationBody[]> {
  const res = await request(api.url).get(`/v1/${scope}/devices/${deviceId}/operations`).set(bearer(token));
  if (res.status !== 200) throw new Error(`listOperations: ${res.status} ${res.text}`);
  return (res.body as components['schemas']['DeviceOperationListDto']).items;
}

export type VpnStatusBody = components['schemas']['VpnStatusDto'];

export async function getVpnStatus(
  api: ApiTarget,
  token: string,
  scope: string,
  deviceId: string,
): Promise<VpnStatusBody> {
  const res = await request(api.url).get(`/v1/${scope}/devices/${deviceId}/vpn`).set(bearer(token));
  if (res.status !== 200) throw new Error(`getVpnStatus: ${res.status} ${res.text}`);
  return res.body as VpnStatusBody;
}

export interface ConnectDeviceOptions {
  /** Defaults to the device's clientId. */
  clientId?: string;
  username?: string;
  password?: string;
  /** Sets the protocol's last will (`$EDC/{account}/{clientId}/MQTT/LWT`), or this topic. */
  will?: boolean | string;
}

/** The MQTT.js options of a device connection; never reconnects, so a refusal or a close is final. */
function deviceOptions(
  clientId: string,
  account: string | undefined,
  o: ConnectDeviceOptions,
): IClientOptions {
  const options: IClientOptions = {
    clientId,
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    keepalive: 30,
  };
  if (o.username !== undefined) options.username = o.username;
  if (o.password !== undefined) options.password = o.password;
  if (o.will) {
    const topic = typeof o.will === 'string' ? o.will : Topics.lwt(account ?? '', clientId);
    options.will = {
      topic,
      payload: encodeKuraPayload({ timestamp: Date.now(), metrics: [] }),
      qos: 1,
      retain: false,
    };
  }
  return options;
}

/** A raw MQTT client connected with the device credentials (client id = the device's clientId). */
export async function connectDevice(
  api: TestApi,
  creds: DeviceCredentials,
  opts: ConnectDeviceOptions = {},
): Promise<MqttClient> {
  const clientId = opts.clientId ?? creds.clientId;
  return connectAsync(
    api.mqttUrl,
    deviceOptions(clientId, creds.account, {
      username: creds.username,
      password: creds.password,
      ...opts,
    }),
  );
}

/** A raw client without credentials; only a broker that allows anonymous access accepts it. */
export async function connectAnonymous(
  api: TestApi,
  account: string,
  clientId: string,
  opts: ConnectDeviceOptions = {},
): Promise<MqttClient> {
  return connectAsync(api.mqttUrl, deviceOptions(clientId, account, opts));
}

/**
 * A client that speaks for `device` of `account` on whichever broker the API uses: with issued
 * credentials on the embedded broker, anonymously with the device's clientId on an external one
 * (the machine's Mosquitto enforces no auth: production brokers do, through their own hook).
 */
export async function connectAsDevice(
  api: TestApi,
  token: string,
  scope: string,
  device: DeviceBody,
  account: string,
  opts: ConnectDeviceOptions = {},
): Promise<MqttClient> {
  if (usesExternalBroker(api)) return connectAnonymous(api, account, device.clientId, opts);
  const creds = await issueCredentials(api, token, scope, device.id);
  return connectDevice(api, creds, opts);
}

export const kuraBytes = (metrics: KuraPayload['metrics'], timestamp = Date.now()): Buffer =>
  encodeKuraPayload({ timestamp, metrics });

export async function publishBirth(
  client: MqttClient,
  account: string,
  clientId: string,
  birth: Partial<BirthCertificate> = {},
): Promise<void> {
  const metrics = birthMetrics({ applicationIds: ['VPNCLIENT-V2'], ...birth });
  await client.publishAsync(Topics.birth(account, clientId), kuraBytes(metrics), { qos: 1 });
}

export async function publishDc(client: MqttClient, account: string, clientId: string): Promise<void> {
  await client.publishAsync(Topics.disconnect(account, clientId), kuraBytes([]), { qos: 1 });
}

export async function publishStatus(
  client: MqttClient,
  account: string,
  clientId: string,
  report: VpnStatusReport,
): Promise<void> {
  await client.publishAsync(Topics.status(account, clientId), kuraBytes(statusMetrics(report)), { qos: 1 });
}

/** Publishes raw bytes with QoS 1 (for malformed payloads). */
export async function publishRaw(client: MqttClient, topic: string, payload: Buffer): Promise<void> {
  await client.publishAsync(topic, payload, { qos: 1 });
}

/** Resolves when the connection is closed (by the broker or by us). */
export function closed(client: MqttClient): Promise<void> {
  if (!client.connected && client.disconnected) return Promise.resolve();
  return new Promise((resolve) => client.once('close', () => resolve()));
}

/**
 * Subscribes and returns the SUBACK return codes, one per filter (128 = refused). MQTT.js
 * rejects `subscribeAsync` when any code is a failure; the SUBACK packet is on the error.
 */
export async function subscribeGranted(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    const granted = await client.subscribeAsync(filters, { qos: 1 });
    return granted.map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted?: Array<number | object> } }).packet;
    if (!packet?.granted) throw err;
    return packet.granted.map((g) => (typeof g === 'number' ? g : 128));
  }
}

/** Records every message the client receives, in arrival order. */
export function recordMessages(client: MqttClient): Array<{ topic: string; payload: Buffer }> {
  const seen: Array<{ topic: string; payload: Buffer }> = [];
  client.on('message', (topic, payload) => seen.push({ topic, payload }));
  return seen;
}

/** Ends clients that may already be closed, without waiting on a dead connection. */
export async function endAll(...clients: Array<MqttClient | undefined>): Promise<void> {
  const open = clients.filter((c): c is MqttClient => c !== undefined);
  await Promise.all(open.map((c) => c.endAsync(true).catch(() => undefined)));
}

/**
 * Ends the persistent session `clientId` left in a shared broker (connect once with
 * a clean session), so that it does not queue messages for a process that is gone.
 */
export async function clearMqttSession(brokerUrl: string, clientId: string): Promise<void> {
  const client = await connectAsync(brokerUrl, {
    clientId,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  await client.endAsync(true);
}
