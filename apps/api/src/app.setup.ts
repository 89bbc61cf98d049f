import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { AppConfig } from './config/app-config';
import { AppExceptionFilter } from './common/exception.filter';
import { cors } from './common/cors';
import { inputGuard } from './common/input-guard';
import { requestLogger } from './common/logging';
import { mountOpenApi } from './openapi/openapi';
import { AppMetrics } from './metrics/app-metrics';
import { httpMetrics } from './metrics/http-metrics';

/** Where Swagger UI lives: its HTML, scripts and styles. */
const isDocsPath = (path: string): boolean => path === '/docs' || path.startsWith('/docs/');

/**
 * Security headers on every response (helmet): nosniff, no framing (CSP frame-ancestors 'none'
 * and X-Frame-Options DENY), no referrer, and a CSP that lets an answer load nothing at all.
 * Swagger UI at /docs gets its own policy: its scripts and styles from this origin, plus the
 * inline styles it needs; still never framed.
 */
function securityHeaders() {
  const shared = { frameguard: { action: 'deny' as const } };
  const api = helmet({
    ...shared,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
      },
    },
  });
  const docs = helmet({
    ...shared,
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
  });
  return (req: Request, res: Response, next: NextFunction): void => {
    if (isDocsPath(req.path)) return docs(req, res, next);
    // API answers carry tokens, credentials and tenant data: no cache keeps a copy.
    res.setHeader('Cache-Control', 'no-store');
    api(req, res, next);
  };
}

/**
 * Everything about the HTTP pipeline that is not a module: proxy trust, request metrics, CORS,
 * security headers, body limits and the input guard, request logging, OpenAPI. Shared by main.ts
 * and the tests so both run the same pipeline.
 */
export function configureApp(
  app: NestExpressApplication,
  config: AppConfig,
  logger: Logger,
): INestApplication {
  if (config.trustProxy !== undefined) app.set('trust proxy', config.trustProxy);
  app.use(httpMetrics(app.get(AppMetrics)));
  app.use(requestLogger(logger));
  // Before every guard and check: an allowed origin's preflight is answered here (docs/cors.md).
  if (config.corsOrigins.length > 0) app.use(cors(config.corsOrigins));
  app.use(securityHeaders());
  // Both parsers Nest would add at init, registered here so the input guard runs after them.
  app.useBodyParser('json', { limit: config.bodyLimit });
  app.useBodyParser('urlencoded', { limit: config.bodyLimit, extended: true });
  app.use(inputGuard());
  app.disable('x-powered-by');
  app.set('etag', false);
  mountOpenApi(app);
  return app;
}

/**
 * Body-parser failures (malformed JSON, oversized bodies) and input-guard refusals happen in
 * Express middleware, before Nest's filters; this Express error handler gives them the same
 * error body (and headers, e.g. Retry-After).
 */
export function expressErrorHandler(filter = new AppExceptionFilter()) {
  return (err: unknown, req: Request, res: Response, next: NextFunction): void => {
    if (res.headersSent) return next(err);
    const { status, body, headers } = filter.toBody(err, req);
    for (const [k, v] of Object.entries(headers ?? {})) res.setHeader(k, v);
    res.status(status).json(body);
  };
}
