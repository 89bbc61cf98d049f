import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ErrorCodes, type ErrorCode } from '../common/app-error';
import { generateOpenApiSpec } from './generate-openapi';

interface Operation {
  operationId: string;
  summary?: string;
  tags?: string[];
  security?: unknown;
  parameters?: Array<{ name: string; in: string; schema: Record<string, unknown> }>;
  requestBody?: unknown;
  responses: Record<
    string,
    {
      description?: string;
      content?: Record<string, { schema: { $ref: string }; examples?: Record<string, { $ref: string }> }>;
    }
  >;
}

/** Every operation of a document as [method path, operation]. */
function operationsOf(doc: { paths: Record<string, Record<string, Operation>> }): Array<[string, Operation]> {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]): [string, Operation] => [
      `${method.toUpperCase()} ${path}`,
      op,
    ]),
  );
}

/** Operations that take no token at all. */
const PUBLIC = [
  'GET /health/live',
  'GET /health/ready',
  'POST /v1/authentication/user',
  'POST /v1/authentication/apikey',
  'POST /v1/authentication/refresh',
  'POST /api/client/signin',
];

describe('OpenAPI artifact', () => {
  let generated: string;

  beforeAll(async () => {
    generated = await generateOpenApiSpec();
  });

  it('should match the committed openapi.json (run `npm run openapi:write` after changing the API)', () => {
    const committed = readFileSync(join(__dirname, '../../../../openapi.json'), 'utf8');
    expect(generated).toBe(committed);
  });

  it('should match the committed integrator client types (test/generated/api-types.ts)', async () => {
    const committed = readFileSync(join(__dirname, '../../../../test/generated/api-types.ts'), 'utf8');
    const fresh = execFileSync(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', join(__dirname, 'print-client-types.ts')],
      {
        encoding: 'utf8',
        env: { ...process.env, TS_NODE_PROJECT: join(__dirname, '../../../../tsconfig.json') },
      },
    );
    expect(fresh).toBe(committed);
  });

  it('should document every operation with a stable id, its security and the error body', () => {
    const doc = JSON.parse(generated);
    const ids = new Set<string>();
    for (const [path, methods] of Object.entries<Record<string, Operation>>(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        expect(op.operationId).toMatch(/^[A-Za-z]+_[A-Za-z]+$/);
        expect(ids.has(op.operationId)).toBe(false);
        ids.add(op.operationId);
        const isPublic =
          path.startsWith('/health') ||
          [
            '/v1/authentication/user',
            '/v1/authentication/apikey',
            '/v1/authentication/refresh',
            '/api/client/signin',
          ].includes(path);
        if (!isPublic) {
          expect({ path, method, security: op.security }).toEqual({
            path,
            method,
            security: [{ bearer: [] }],
          });
          expect(op.responses['401'].content!['application/json'].schema.$ref).toBe(
            '#/components/schemas/ErrorBodyDto',
          );
        }
      }
    }
  });

  it('should say `security: []` on exactly the public operations', () => {
    const doc = JSON.parse(generated);
    const open = operationsOf(doc)
      .filter(([, op]) => Array.isArray(op.security) && (op.security as unknown[]).length === 0)
      .map(([name]) => name);
    expect(open.sort()).toEqual([...PUBLIC].sort());
  });

  it('should give every operation a summary, every response a description and every tag a description', () => {
    const doc = JSON.parse(generated);
    const tags = new Map<string, string>(
      (doc.tags as Array<{ name: string; description: string }>).map((t) => [t.name, t.description]),
    );
    for (const [name, op] of operationsOf(doc)) {
      expect({ name, summary: !!op.summary }).toEqual({ name, summary: true });
      for (const [status, res] of Object.entries(op.responses)) {
        expect({ name, status, description: !!res.description }).toEqual({ name, status, description: true });
      }
      for (const tag of op.tags ?? [])
        expect({ name, tag, described: !!tags.get(tag) }).toEqual({ name, tag, described: true });
    }
    expect(doc.servers.length).toBeGreaterThan(0);
  });

  it('should type scopeId as `_` or a UUID and every other path id as a UUID', () => {
    const doc = JSON.parse(generated);
    let scoped = 0;
    for (const [name, op] of operationsOf(doc)) {
      for (const param of (op.parameters ?? []).filter((p) => p.in === 'path')) {
        if (param.name === 'scopeId') {
          scoped++;
          const pattern = new RegExp(param.schema.pattern as string);
          expect({ name, type: param.schema.type }).toEqual({ name, type: 'string' });
          expect(
            ['_', '0b6f3a52-9c4d-4b7e-8f21-6a0d5c9b7e13', '0B6F3A52-9C4D-4B7E-8F21-6A0D5C9B7E13'].every((v) =>
              pattern.test(v),
            ),
          ).toBe(true);
          expect(['', '__', 'x', '0b6f3a52', '../'].some((v) => pattern.test(v))).toBe(false);
        } else {
          expect({ name, param: param.name, schema: param.schema }).toEqual({
            name,
            param: param.name,
            schema: { type: 'string', format: 'uuid' },
          });
        }
      }
    }
    expect(scoped).toBeGreaterThan(40);
  });

  it('should document 400, 403, 413 and 429 exactly where they can happen', () => {
    const doc = JSON.parse(generated);
    const has = (op: Operation, status: number) => String(status) in op.responses;
    // Authenticated inside the handler (a ticket or ping token is the alternative), after the
    // per-principal rate limit has passed them by.
    const notRateLimited = [
      'GET /health/live',
      'GET /health/ready',
      'GET /v1/{scopeId}/vpn/events',
      'POST /v1/{scopeId}/devices/{deviceId}/vpn/sessions/{sessionId}/_ping',
    ];
    for (const [name, op] of operationsOf(doc)) {
      const takesInput = (op.parameters?.length ?? 0) > 0 || op.requestBody !== undefined;
      expect({ name, 400: has(op, 400) }).toEqual({ name, 400: takesInput });
      expect({ name, 413: has(op, 413) }).toEqual({ name, 413: op.requestBody !== undefined });
      expect({ name, 429: has(op, 429) }).toEqual({ name, 429: !notRateLimited.includes(name) });
      // A scope outside the caller's subtree is 403; so is a role without the route's permission.
      if (name.includes('{scopeId}')) expect({ name, 403: has(op, 403) }).toEqual({ name, 403: true });
    }
    // Routes about the caller's own token, which any role may call: nothing to forbid.
    expect(has(doc.paths['/v1/authentication/logout'].post, 403)).toBe(false);
    expect(has(doc.paths['/v1/authentication/info'].get, 403)).toBe(false);
    expect(
      PUBLIC.filter((name) => name.startsWith('POST')).every((name) => {
        const [method, path] = name.split(' ');
        return !has(doc.paths[path][method.toLowerCase()], 403);
      }),
    ).toBe(true);
  });

  it('should show example bodies of the error codes under the status they answer with', () => {
    const doc = JSON.parse(generated);
    const examples = doc.components.examples as Record<string, { value: { result: string } }>;
    expect(Object.keys(examples).sort()).toEqual(Object.keys(ErrorCodes).sort());
    for (const [name, op] of operationsOf(doc)) {
      for (const [status, res] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const refs = Object.values(res.content!['application/json'].examples ?? {}).map((e) => e.$ref);
        const codes = Object.keys(ErrorCodes).filter((c) => String(ErrorCodes[c as ErrorCode]) === status);
        // Every code of the status, or (a route that says which) some of them.
        expect({ name, status, some: refs.length > 0 }).toEqual({ name, status, some: true });
        expect(codes.map((c) => `#/components/examples/${c}`)).toEqual(expect.arrayContaining(refs));
      }
    }
  });

  it('should type the command timeout as an integer and logout as 204 No Content', () => {
    const doc = JSON.parse(generated);
    const connect = doc.paths['/v1/{scopeId}/devices/{deviceId}/vpn/_connect'].post as Operation;
    expect(connect.parameters!.find((p) => p.name === 'timeout')!.schema.type).toBe('integer');
    expect(Object.keys(doc.paths['/v1/authentication/logout'].post.responses)).toContain('204');
  });

  it('should mark the misspelt _discconect alias as deprecated', () => {
    const doc = JSON.parse(generated);
    expect(doc.paths['/v1/{scopeId}/devices/{deviceId}/vpn/_discconect'].post.deprecated).toBe(true);
    expect(doc.paths['/v1/{scopeId}/devices/{deviceId}/vpn/_disconnect'].post.deprecated).toBeUndefined();
  });
});
