import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject, type OperationObject } from '@nestjs/swagger';
import { errorExamples, errorResponse } from '../common/api-errors.decorator';
import { ErrorBodyDto } from '../common/error-body.dto';

/** The top-level tags with their descriptions; every operation's tag must be one of them (a test checks). */
export const API_TAGS: ReadonlyArray<[name: string, description: string]> = [
  ['authentication', 'Sign in with a password or an API key, rotate and revoke tokens'],
  ['accounts', 'The account tree: a tenant and its child accounts, each with its VPN subnet'],
  ['users', 'The users of an account and their roles'],
  ['apikeys', 'API keys for machines: a role in one account, the secret shown once'],
  ['devices', 'The devices of an account, their MQTT credentials and lifecycle events'],
  ['vpn', "A device's VPN: its status, connect and disconnect commands, the fleet's status"],
  ['vpn sessions', "Engineers' sessions to devices through a gateway, and their audit trail"],
  ['vpn events', 'Server-Sent Events of VPN status and device connection changes'],
  ['gateways', 'The WireGuard gateways that carry the tunnels of an account and its sub-accounts'],
  ['webhooks', 'Webhook endpoints that receive fleet events, and their deliveries'],
  ['fendvpn client', "FendVPN's client API, so a FendVPN-style WireGuard client works unchanged"],
  ['health', 'Liveness and readiness probes for orchestrators'],
];

type HttpMethod = 'get' | 'put' | 'post' | 'delete' | 'options' | 'head' | 'patch' | 'trace';
const METHODS: HttpMethod[] = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * What follows from an operation's shape rather than from its decorators: any operation with
 * parameters or a body can answer 400 (a malformed scope, id, query or body; the path ids and
 * query DTOs are all checked), one with a body 413 (HTTP_BODY_LIMIT), and one that declares no
 * security requirement is public, which the document says with `security: []` (a missing
 * `security` would mean "unknown" to a reader and to linters).
 */
function completeOperation(op: OperationObject): void {
  op.security ??= [];
  const takesInput = (op.parameters?.length ?? 0) > 0 || op.requestBody !== undefined;
  if (takesInput && !op.responses['400']) op.responses['400'] = errorResponse(400);
  if (op.requestBody !== undefined && !op.responses['413']) op.responses['413'] = errorResponse(413);
  op.responses = sortKeys(op.responses)!;
}

function sortKeys<T extends object>(obj: T | undefined): T | undefined {
  if (!obj) return obj;
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

/**
 * Builds the OpenAPI 3 document from the code. Operation ids are
 * `<Controller>_<method>` so generated clients keep stable names, and maps are
 * key-sorted so the committed file only changes when the API does.
 */
export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Device VPN Cloud API')
    .setDescription(
      'Multi-tenant management of the VPN connections of remote devices. Every error answers with ' +
        "`{result, error, details}`; `_` as scopeId means the caller's own account.",
    )
    .setVersion('1')
    // The API's own base URL: a relative server, so the document fits whichever host serves it.
    .addServer('/', 'This API (the host that serves this document; PUBLIC_URL in production)')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'bearer');
  for (const [name, description] of API_TAGS) config.addTag(name, description);
  const doc = SwaggerModule.createDocument(app, config.build(), {
    operationIdFactory: (controllerKey: string, methodKey: string) =>
      `${controllerKey.replace(/Controller$/, '')}_${methodKey}`,
    extraModels: [ErrorBodyDto],
  });
  // package.json says UNLICENSED: the document says so, with no licence URL to point at.
  doc.info.license = { name: 'Proprietary (UNLICENSED)' };
  doc.paths = sortKeys(doc.paths) ?? {};
  for (const item of Object.values(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (op) completeOperation(op);
    }
  }
  doc.components = { ...doc.components, examples: errorExamples() };
  doc.components.schemas = sortKeys(doc.components.schemas);
  if (doc.tags) doc.tags = [...doc.tags].sort((a, b) => a.name.localeCompare(b.name));
  return doc;
}

export function serializeOpenApi(doc: OpenAPIObject): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

/** Serves the spec at /openapi.json and a UI at /docs. */
export function mountOpenApi(app: INestApplication): void {
  const doc = buildOpenApiDocument(app);
  SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'openapi.json', yamlDocumentUrl: 'openapi.yaml' });
}
