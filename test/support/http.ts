import request from 'supertest';
import { TEST_ADMIN_PASSWORD } from './test-api';

/**
 * The API a factory talks to: anything with the base URL, so the in-process API of the
 * integration tier (TestApi) and an API process of the e2e tier (ApiProcess) both fit.
 */
export interface ApiTarget {
  url: string;
}

/** Signs in and returns the bearer token (access token JWT). */
export async function login(
  api: ApiTarget,
  username = 'admin',
  password = TEST_ADMIN_PASSWORD,
): Promise<string> {
  const res = await request(api.url).post('/v1/authentication/user').send({ username, password }).expect(200);
  return res.body.tokenId as string;
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** The user id inside an access token (JWT `sub`), to compare with `requestedBy` or `createdBy`. */
export function userIdOf(token: string): string {
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as {
    sub: string;
  };
  return claims.sub;
}

/** Text that must never reach a client: stack traces, exception class names, SQL. */
const LEAKS = ['stack', 'Error:', 'SELECT', 'QueryFailed', 'INSERT', 'UPDATE "', 'at /', '.ts:'];

export function expectNoInternalsLeaked(res: request.Response): void {
  for (const leak of LEAKS) {
    if (res.text.includes(leak)) {
      throw new Error(`response to ${res.status} leaks "${leak}": ${res.text.slice(0, 500)}`);
    }
  }
}

/**
 * Asserts the documented error body `{result, error, details}` (exactly these
 * keys, all strings), its HTTP status, and that nothing internal leaked.
 */
export function expectError(res: request.Response, status: number, result: string): void {
  expect({ status: res.status, result: res.body?.result }).toEqual({ status, result });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(res.body).sort()).toEqual(['details', 'error', 'result']);
  expect(typeof res.body.error).toBe('string');
  expect(res.body.error.length).toBeGreaterThan(0);
  expect(typeof res.body.details).toBe('string');
  expectNoInternalsLeaked(res);
}
