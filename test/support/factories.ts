import type { components } from '../generated/api-types';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { bearer, login, type ApiTarget } from './http';

/** Small factories over the HTTP API; random suffixes keep names unique within a database. */

export type RoleName = 'admin' | 'operator' | 'viewer';

export const suffix = (): string => randomBytes(4).toString('hex');

export type AccountBody = components['schemas']['AccountDto'];

/** Creates a child account of `parentScope` (default `_`, the caller's own account). */
export async function createAccount(
  api: ApiTarget,
  token: string,
  opts: { name?: string; parentScope?: string; description?: string; vpnSubnet?: string } = {},
): Promise<AccountBody> {
  const body: Record<string, string> = { name: opts.name ?? `acct-${suffix()}` };
  if (opts.description !== undefined) body.description = opts.description;
  if (opts.vpnSubnet !== undefined) body.vpnSubnet = opts.vpnSubnet;
  const res = await request(api.url)
    .post(`/v1/${opts.parentScope ?? '_'}/accounts`)
    .set(bearer(token))
    .send(body);
  if (res.status !== 201) throw new Error(`createAccount: ${res.status} ${res.text}`);
  return res.body as AccountBody;
}

export interface CreatedUser {
  id: string;
  scopeId: string;
  username: string;
  password: string;
  role: RoleName;
  optlock: number;
  /** A bearer token of this user, signed in right after creation. */
  token: string;
}

/** Creates a user in `scopeId` (an account id or `_`) and signs it in. */
export async function createUser(
  api: ApiTarget,
  token: string,
  scopeId: string,
  role: RoleName,
  opts: { username?: string; password?: string } = {},
): Promise<CreatedUser> {
  const username = opts.username ?? `user-${role}-${suffix()}`;
  const password = opts.password ?? `pw-${randomBytes(12).toString('hex')}`;
  const res = await request(api.url)
    .post(`/v1/${scopeId}/users`)
    .set(bearer(token))
    .send({ username, password, role });
  if (res.status !== 201) throw new Error(`createUser: ${res.status} ${res.text}`);
  return {
    id: res.body.id,
    scopeId: res.body.scopeId,
    username,
    password,
    role,
    optlock: res.body.optlock,
    token: await login(api, username, password),
  };
}

export interface CreatedApiKey {
  id: string;
  scopeId: string;
  name: string;
  role: RoleName;
  /** The secret, as returned once at creation. */
  apiKey: string;
}

export async function createApiKey(
  api: ApiTarget,
  token: string,
  scopeId: string,
  role: RoleName,
  opts: { name?: string } = {},
): Promise<CreatedApiKey> {
  const res = await request(api.url)
    .post(`/v1/${scopeId}/apikeys`)
    .set(bearer(token))
    .send({ name: opts.name ?? `key-${suffix()}`, role });
  if (res.status !== 201) throw new Error(`createApiKey: ${res.status} ${res.text}`);
  return res.body as CreatedApiKey;
}

/** Signs in with an API key and returns the bearer token. */
export async function loginApiKey(api: ApiTarget, apiKey: string): Promise<string> {
  const res = await request(api.url).post('/v1/authentication/apikey').send({ apiKey });
  if (res.status !== 200) throw new Error(`loginApiKey: ${res.status} ${res.text}`);
  return res.body.tokenId as string;
}

export interface Tenant {
  account: AccountBody;
  admin: CreatedUser;
}

/** A child account of `parentScope` with an admin user of its own. */
export async function createTenant(
  api: ApiTarget,
  token: string,
  opts: { name?: string; parentScope?: string } = {},
): Promise<Tenant> {
  const account = await createAccount(api, token, opts);
  const admin = await createUser(api, token, account.id, 'admin');
  return { account, admin };
}
