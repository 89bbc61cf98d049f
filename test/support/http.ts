import request from 'supertest';
import type { TestApi } from './test-api';
import { TEST_ADMIN_PASSWORD } from './test-api';

/** Signs in and returns the bearer token (access token JWT). */
export async function login(
  api: TestApi,
  username = 'admin',
  password = TEST_ADMIN_PASSWORD,
): Promise<string> {
  const res = await request(api.url).post('/v1/authentication/user').send({ username, password }).expect(200);
  return res.body.tokenId as string;
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

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
