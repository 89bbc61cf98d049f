import request from 'supertest';
import { firstHostAddress, type GatewayPeer } from '@app/protocol';
import type { DeviceBody } from '../support/device-factories';
import type { AccountBody } from '../support/factories';
import type { FakeGateway } from '../support/fake-gateway';
import type { components } from '../generated/api-types';
import { bearer } from '../support/http';
import type { TestApi } from '../support/test-api';
import { CLIENT_POOL, Closer, createDeviceIn, SimDevice } from '../gateways/gateway-fixtures';

/** Helpers for the engineers' session tests (REST sessions and the FendVPN client API). */

export const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** What `POST …/devices/{deviceId}/vpn/sessions` answers (201), as the OpenAPI spec declares it. */
export type SessionCreatedBody = components['schemas']['SessionCreatedDto'];

/** One row of the audit trail (`GET /v1/{scopeId}/vpn/sessions`), as the OpenAPI spec declares it. */
export type SessionBody = components['schemas']['SessionDto'];

/** Every field of an audit row, and only these. */
export const SESSION_FIELDS = [
  'apiKeyId',
  'deviceId',
  'endReason',
  'endedOn',
  'gatewayId',
  'id',
  'kind',
  'lastSeenOn',
  'rxBytes',
  'startedOn',
  'tunnelAddress',
  'txBytes',
  'userId',
];

/** A gateway's interface addresses: the first host of each account subnet it carries devices of, and of the client pool. */
export const addressesFor = (subnets: string[], pool = CLIENT_POOL): string[] => [
  ...[...subnets].sort().map(firstHostAddress),
  firstHostAddress(pool),
];

/** The peer a gateway must hold for a device. */
export const devicePeer = (
  device: DeviceBody,
  accountId: string,
  publicKey: string,
  allow: string[] = [],
): GatewayPeer => ({
  publicKey,
  allowedIps: [`${device.tunnelAddress}/32`],
  kind: 'device',
  accountId,
  allow,
});

/** The peer a gateway must hold for an engineer's session. */
export const clientPeer = (
  tunnelAddress: string,
  accountId: string,
  publicKey: string,
  allow: string[],
): GatewayPeer => ({
  publicKey,
  allowedIps: [`${tunnelAddress}/32`],
  kind: 'client',
  accountId,
  allow: [...allow].sort(),
});

/** The client peers a FakeGateway holds now. */
export const clientPeers = (fake: FakeGateway): GatewayPeer[] =>
  [...fake.peers.values()].filter((p) => p.kind === 'client');

/** True when `ip` is a host of IPv4 `cidr`. */
export function inCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string) => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const [net, prefix] = cidr.split('/');
  const size = 2 ** (32 - Number(prefix));
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(net) / size);
}

export const sessionsPath = (scope: string, deviceId: string): string =>
  `/v1/${scope}/devices/${deviceId}/vpn/sessions`;

/** POST …/vpn/sessions with `body` (a `{publicKey}` normally). */
export const openSession = (api: TestApi, token: string, scope: string, deviceId: string, body: object) =>
  request(api.url).post(sessionsPath(scope, deviceId)).set(bearer(token)).send(body);

/** Opens a session that must succeed (201). */
export async function openOk(
  api: TestApi,
  token: string,
  scope: string,
  deviceId: string,
  publicKey: string,
): Promise<SessionCreatedBody> {
  const res = await openSession(api, token, scope, deviceId, { publicKey });
  if (res.status !== 201) throw new Error(`openSession: ${res.status} ${res.text}`);
  return res.body as SessionCreatedBody;
}

export const closeSession = (api: TestApi, token: string, scope: string, deviceId: string, id: string) =>
  request(api.url)
    .delete(`${sessionsPath(scope, deviceId)}/${id}`)
    .set(bearer(token));

/** `POST …/sessions/{id}/_ping` with a body (the pingToken) and optionally a bearer token. */
export const pingSession = (
  api: TestApi,
  scope: string,
  deviceId: string,
  id: string,
  opts: { pingToken?: string; token?: string } = {},
) =>
  request(api.url)
    .post(`${sessionsPath(scope, deviceId)}/${id}/_ping`)
    .set(opts.token ? bearer(opts.token) : {})
    .send(opts.pingToken === undefined ? {} : { pingToken: opts.pingToken });

/** The audit trail of a scope (GET /v1/{scope}/vpn/sessions), which must answer 200. */
export async function listSessions(
  api: TestApi,
  token: string,
  scope: string,
  query: Record<string, string | number | boolean> = {},
): Promise<SessionBody[]> {
  const res = await request(api.url).get(`/v1/${scope}/vpn/sessions`).query(query).set(bearer(token));
  if (res.status !== 200) throw new Error(`listSessions: ${res.status} ${res.text}`);
  return res.body.items as SessionBody[];
}

/** One session of the audit trail, by id. */
export async function getSession(
  api: TestApi,
  token: string,
  scope: string,
  id: string,
): Promise<SessionBody> {
  const found = (await listSessions(api, token, scope, { limit: 500 })).find((s) => s.id === id);
  if (!found) throw new Error(`session ${id} is not in the audit trail of ${scope}`);
  return found;
}

/** `POST …/vpn/_connect` or `_disconnect` of a device. */
export const vpnCommand = (
  api: TestApi,
  token: string,
  scope: string,
  deviceId: string,
  command: '_connect' | '_disconnect',
  timeout = 10_000,
) =>
  request(api.url)
    .post(`/v1/${scope}/devices/${deviceId}/vpn/${command}`)
    .query({ timeout })
    .set(bearer(token));

/**
 * A device of `account` (addressed as `scope`) simulated with a WireGuard key (or none), its MQTT
 * link up and its BIRTH sent; with `connect` (default) its VPN is connected through its gateway.
 */
export async function simulatedDevice(
  api: TestApi,
  closer: Closer,
  token: string,
  account: AccountBody,
  opts: { scope?: string; publicKey?: string | null; connect?: boolean } = {},
): Promise<{ device: DeviceBody; sim: SimDevice; key: string }> {
  const scope = opts.scope ?? '_';
  const device = await createDeviceIn(api, token, scope);
  const sim = closer.add(
    await SimDevice.start(api, token, scope, device, account.name, { publicKey: opts.publicKey }),
  );
  if (opts.connect ?? true) {
    const res = await vpnCommand(api, token, scope, device.id, '_connect');
    if (res.status !== 200) throw new Error(`_connect: ${res.status} ${res.text}`);
  }
  return { device, sim, key: sim.publicKey ?? '' };
}
