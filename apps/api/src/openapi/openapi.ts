import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { ErrorBodyDto } from '../common/error-body.dto';

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
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, 'bearer')
    .build();
  const doc = SwaggerModule.createDocument(app, config, {
    operationIdFactory: (controllerKey: string, methodKey: string) =>
      `${controllerKey.replace(/Controller$/, '')}_${methodKey}`,
    extraModels: [ErrorBodyDto],
  });
  doc.paths = sortKeys(doc.paths) ?? {};
  if (doc.components) doc.components.schemas = sortKeys(doc.components.schemas);
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
