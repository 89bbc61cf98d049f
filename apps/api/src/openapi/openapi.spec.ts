import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { generateOpenApiSpec } from './generate-openapi';

interface Operation {
  operationId: string;
  security?: unknown;
  responses: Record<string, { content: Record<string, { schema: { $ref: string } }> }>;
}

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
          expect(op.responses['401'].content['application/json'].schema.$ref).toBe(
            '#/components/schemas/ErrorBodyDto',
          );
        }
      }
    }
  });

  it('should mark the misspelt _discconect alias as deprecated', () => {
    const doc = JSON.parse(generated);
    expect(doc.paths['/v1/{scopeId}/devices/{deviceId}/vpn/_discconect'].post.deprecated).toBe(true);
    expect(doc.paths['/v1/{scopeId}/devices/{deviceId}/vpn/_disconnect'].post.deprecated).toBeUndefined();
  });
});
