import { NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module';
import { loadConfig } from '../config/app-config';
import { buildOpenApiDocument, serializeOpenApi } from './openapi';

/**
 * Generates the spec without a database or broker: preview mode builds the
 * module graph but instantiates no provider, which is all the document needs.
 */
export async function generateOpenApiSpec(): Promise<string> {
  const app = await NestFactory.create(AppModule.forRoot(loadConfig({})), { preview: true, logger: false });
  try {
    return serializeOpenApi(buildOpenApiDocument(app));
  } finally {
    await app.close();
  }
}
