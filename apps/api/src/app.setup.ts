import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { AppConfig } from './config/app-config';
import { AppExceptionFilter } from './common/exception.filter';
import { requestLogger } from './common/logging';
import { mountOpenApi } from './openapi/openapi';

/**
 * Everything about the HTTP pipeline that is not a module: body limits, request
 * logging, OpenAPI. Shared by main.ts and the tests so both run the same pipeline.
 */
export function configureApp(
  app: NestExpressApplication,
  config: AppConfig,
  logger: Logger,
): INestApplication {
  app.use(requestLogger(logger));
  app.useBodyParser('json', { limit: config.bodyLimit });
  app.disable('x-powered-by');
  app.set('etag', false);
  mountOpenApi(app);
  return app;
}

/**
 * Body-parser failures (malformed JSON, oversized bodies) happen in Express
 * middleware, before Nest's filters; this Express error handler gives them the
 * same error body.
 */
export function expressErrorHandler(filter = new AppExceptionFilter()) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    const { status, body } = filter.toBody(err, req);
    res.status(status).json(body);
  };
}
