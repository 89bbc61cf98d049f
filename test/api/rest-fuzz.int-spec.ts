import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { ErrorCodes } from '../../apps/api/src/common/app-error';
import { createAccount, createUser, suffix } from '../support/factories';
import { bearer, expectNoInternalsLeaked, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

/**
 * REST fuzz (attack run, finding D), part of the integration tier: every operation of the OpenAPI
 * document that takes a JSON body, and every query parameter, with wrong types, null, NUL and
 * other control characters, lone surrogates, huge numbers, JSON nested 5,000 deep and 1 MB
 * strings, against a running API with a valid admin token (unauthenticated routes without one).
 * Every answer must be below 500, and every error the documented body `{result, error, details}`
 * with a status matching its result code. Bounded: about a thousand requests, 8 at a time.
 *
 * Re-run alone: `npx jest --selectProjects integration --testPathPatterns rest-fuzz`.
 */

interface Schema {
  type?: string;
  $ref?: string;
  allOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  example?: unknown;
  default?: unknown;
  format?: string;
  items?: Schema;
}

interface Operation {
  operationId: string;
  security?: unknown[];
  parameters?: Array<{ name: string; in: string; schema?: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, unknown>;
}

interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const DEEP = 5000;
const DEEP_MARK = '__fuzz_deep__';
const deepJson = `${'['.repeat(DEEP)}${']'.repeat(DEEP)}`;

/** Hostile values for one field; DEEP_MARK is replaced by JSON nested 5,000 deep after serialising. */
const HOSTILE_VALUES: Array<[string, unknown]> = [
  ['a number', 12345],
  ['a boolean', true],
  ['an array', ['x']],
  ['an object', { x: 1 }],
  ['a string', 'x'],
  ['an empty string', ''],
  ['null', null],
  ['NUL', 'a\u0000b'],
  ['control characters', '\u0001\u0008\u001b\u007f'],
  ['a lone surrogate', '\ud800'],
  ['2^31', 2 ** 31],
  ['2^53', 2 ** 53],
  ['1e308', 1e308],
  ['-1e308', -1e308],
  ['-1', -1],
  ['0.5', 0.5],
  ['nested 5,000 deep', DEEP_MARK],
];

const MEGABYTE = 'x'.repeat(1 << 20);

const HOSTILE_QUERY: Array<[string, string]> = [
  ['NUL', '%00'],
  ['control characters', 'a%01%1b%7f'],
  ['a lone surrogate (bad UTF-8)', '%ED%A0%80'],
  ['broken percent-encoding', '%E0%A4%A'],
  ['2^31', String(2 ** 31)],
  ['1e309', '1e309'],
  ['a huge integer', '9'.repeat(400)],
  ['-1', '-1'],
  ['an empty string', ''],
  ['nested brackets', `x${'[a]'.repeat(200)}`],
];

describe('REST fuzz', () => {
  let api: TestApi;
  let token: string;
  let doc: OpenApi;
  const ids: Record<string, string> = {};
  const failures: string[] = [];

  const resolve = (schema: Schema): Schema => {
    if (schema.$ref) return resolve(doc.components.schemas[schema.$ref.split('/').pop()!]);
    if (schema.allOf?.length === 1) return resolve(schema.allOf[0]);
    return schema;
  };

  /** A plausible value for a field (the spec's example, enum, default or type). */
  const sample = (raw: Schema): unknown => {
    const schema = resolve(raw);
    if (schema.properties) return baseBody(schema);
    if (schema.example !== undefined) return schema.example;
    if (schema.enum?.length) return schema.enum[0];
    if (schema.default !== undefined) return schema.default;
    if (schema.format === 'uuid') return randomUUID();
    switch (schema.type) {
      case 'integer':
      case 'number':
        return 0;
      case 'boolean':
        return true;
      case 'array':
        return [];
      default:
        return `fuzz-${suffix()}`;
    }
  };

  const baseBody = (schema: Schema): Record<string, unknown> => {
    const body: Record<string, unknown> = {};
    for (const name of schema.required ?? []) body[name] = sample(schema.properties![name]);
    return body;
  };

  /** Every field path of a body schema, nested objects included (e.g. info_wireguard.public_key). */
  const fieldPaths = (raw: Schema, prefix: string[] = []): string[][] => {
    const schema = resolve(raw);
    const out: string[][] = [];
    for (const [name, prop] of Object.entries(schema.properties ?? {})) {
      out.push([...prefix, name]);
      const inner = resolve(prop);
      if (inner.properties) out.push(...fieldPaths(inner, [...prefix, name]));
    }
    return out;
  };

  const withValue = (
    body: Record<string, unknown>,
    path: string[],
    value: unknown,
  ): Record<string, unknown> => {
    const copy = structuredClone(body);
    let target = copy;
    for (const key of path.slice(0, -1)) {
      if (typeof target[key] !== 'object' || target[key] === null || Array.isArray(target[key]))
        target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[path[path.length - 1]] = value;
    return copy;
  };

  const serialise = (body: unknown): string => JSON.stringify(body).replace(`"${DEEP_MARK}"`, deepJson);

  const fillPath = (path: string): string =>
    path.replace(/\{(\w+)\}/g, (_m, name: string) => ids[name] ?? randomUUID());

  /** Checks one answer; collects a readable line per violation instead of failing at the first. */
  const check = (what: string, res: request.Response, op: Operation) => {
    const problems: string[] = [];
    if (res.status >= 500) problems.push(`answered ${res.status}`);
    if (res.status >= 400) {
      const body = res.body as Record<string, unknown>;
      const keys = body && typeof body === 'object' ? Object.keys(body).sort().join(',') : typeof body;
      if (!/^application\/json/.test(String(res.headers['content-type']))) problems.push('error is not JSON');
      if (keys !== 'details,error,result') problems.push(`error body has keys ${keys}`);
      const result = body?.result as keyof typeof ErrorCodes;
      if (ErrorCodes[result] !== res.status)
        problems.push(`result ${String(result)} with status ${res.status}`);
      if (typeof body?.error !== 'string' || !body.error) problems.push('error is empty');
      if (typeof body?.details !== 'string') problems.push('details is not a string');
      if (![413, 429].includes(res.status) && !op.responses[String(res.status)]) {
        problems.push(`status ${res.status} is not documented`);
      }
      try {
        expectNoInternalsLeaked(res);
      } catch (err) {
        problems.push((err as Error).message.slice(0, 200));
      }
    }
    if (problems.length) failures.push(`${what}: ${problems.join('; ')} — ${res.text.slice(0, 200)}`);
  };

  /** A request with the spec's lower-case method name (get, post, put, patch, delete). */
  const send = (method: string, url: string): request.Test =>
    (request(api.url) as unknown as Record<string, (url: string) => request.Test>)[method](url);

  /** Runs `tasks` with at most `width` in flight. */
  const pool = async (tasks: Array<() => Promise<void>>, width = 8) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: width }, async () => {
        while (next < tasks.length) await tasks[next++]();
      }),
    );
  };

  beforeAll(async () => {
    api = await startTestApi({ RATE_LIMIT_PER_MINUTE: '0' });
    token = await login(api);
    doc = (await request(api.url).get('/openapi.json').expect(200)).body as OpenApi;
    // Real targets for the routes with ids, so valid-looking bodies reach the services.
    ids.scopeId = '_';
    ids.accountId = (await createAccount(api, token)).id;
    ids.userId = (await createUser(api, token, '_', 'viewer')).id;
    ids.deviceId = (
      await request(api.url)
        .post('/v1/_/devices')
        .set(bearer(token))
        .send({ clientId: `fuzz-${suffix()}` })
        .expect(201)
    ).body.id;
    ids.gatewayId = (
      await request(api.url)
        .post('/v1/_/gateways')
        .set(bearer(token))
        .send({ name: `fuzz-gw-${suffix()}`, endpoint: 'vpn.example.com:51820' })
        .expect(201)
    ).body.id;
  });

  afterAll(async () => {
    await api?.stop();
  });

  beforeEach(() => {
    failures.length = 0;
  });

  // An event stream answers a valid request with a response that never ends: its own tests
  // (test/fleet/events.int-spec.ts) cover its input checks.
  const isStream = (op: Operation) => {
    const ok = op.responses['200'] as { content?: Record<string, unknown> } | undefined;
    return ok?.content?.['text/event-stream'] !== undefined;
  };

  const operations = (filter: (op: Operation) => boolean) => {
    const out: Array<[string, string, string, Operation]> = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (filter(op) && !isStream(op)) out.push([`${method.toUpperCase()} ${path}`, method, path, op]);
      }
    }
    return out;
  };

  it('should fuzz every body operation of the spec without a 5xx or an undocumented error body', async () => {
    const bodyOps = operations((op) => !!op.requestBody?.content['application/json']);
    // The spec has them all: the public sign-ins and the authenticated writes.
    expect(bodyOps.length).toBeGreaterThanOrEqual(17);
    expect(bodyOps.map(([name]) => name)).toEqual(
      expect.arrayContaining([
        'POST /v1/authentication/user',
        'POST /v1/authentication/apikey',
        'POST /v1/authentication/refresh',
        'POST /api/client/signin',
        'PUT /v1/{scopeId}/users/{userId}',
      ]),
    );
    const tasks: Array<() => Promise<void>> = [];
    let sent = 0;
    for (const [name, method, path, op] of bodyOps) {
      const schema = op.requestBody!.content['application/json'].schema;
      const base = baseBody(resolve(schema));
      const isPublic = !op.security?.length;
      const call = (what: string, raw: string) =>
        tasks.push(async () => {
          let req = send(method, fillPath(path));
          if (!isPublic) req = req.set(bearer(token));
          const res = await req.set('Content-Type', 'application/json').send(raw);
          sent++;
          check(`${name} with ${what}`, res, op);
        });
      const fields = fieldPaths(schema);
      for (const field of fields) {
        for (const [label, value] of HOSTILE_VALUES) {
          call(`${field.join('.')} = ${label}`, serialise(withValue(base, field, value)));
        }
      }
      // One 1 MB string per operation (it is refused by the body limit whichever field carries it).
      call(`${fields[0].join('.')} = 1 MB`, serialise(withValue(base, fields[0], MEGABYTE)));
      for (const [label, raw] of [
        ['the whole body nested 5,000 deep', deepJson],
        ['a JSON null body', 'null'],
        ['a JSON array body', '[]'],
        ['a JSON string body', '"x"'],
        ['a JSON number body', '2147483648'],
        ['an empty object', '{}'],
        ['an unknown field', serialise({ ...base, [`extra${suffix()}`]: 1 })],
        ['a NUL in a field name', serialise({ ...base, 'a\u0000b': 1 })],
        ['a __proto__ field', serialise(base).replace(/^\{/, '{"__proto__":{"role":"admin"},')],
        ['truncated JSON', serialise(base).slice(0, -1)],
      ] as const) {
        call(label, raw);
      }
    }
    await pool(tasks);
    expect(failures).toEqual([]);
    expect(sent).toBe(tasks.length);
  });

  it('should fuzz every query parameter of the spec the same way', async () => {
    const tasks: Array<() => Promise<void>> = [];
    for (const [name, method, path, op] of operations((o) =>
      (o.parameters ?? []).some((p) => p.in === 'query'),
    )) {
      // Commands (e.g. POST …/vpn/_connect?timeout=) too: the fixture device is offline, so a
      // valid value answers at once.
      for (const param of (op.parameters ?? []).filter((p) => p.in === 'query')) {
        for (const [label, value] of [
          ...HOSTILE_QUERY,
          ['repeated', 'a&' + param.name + '=b'] as [string, string],
        ]) {
          tasks.push(async () => {
            const res = await send(method, `${fillPath(path)}?${param.name}=${value}`).set(bearer(token));
            check(`${name} with ${param.name} = ${label}`, res, op);
          });
        }
      }
    }
    await pool(tasks);
    expect(failures).toEqual([]);
  });

  it('should answer hostile path ids with 400, 403 or 404, never a 5xx', async () => {
    const tasks: Array<() => Promise<void>> = [];
    const scopes = [
      '%00',
      '%01',
      'x'.repeat(2000),
      '..',
      '%2e%2e',
      '00000000-0000-0000-0000-000000000000',
      ids.accountId.toUpperCase(),
    ];
    for (const [name, method, path, op] of operations(() => true)) {
      if (method !== 'get' || !path.includes('{scopeId}')) continue;
      for (const scope of scopes) {
        tasks.push(async () => {
          const res = await request(api.url)
            .get(fillPath(path).replace(/^\/v1\/_/, `/v1/${scope}`))
            .set(bearer(token));
          check(`${name} with scopeId ${scope.slice(0, 20)}`, res, op);
        });
      }
    }
    await pool(tasks);
    expect(failures).toEqual([]);
  });
});
