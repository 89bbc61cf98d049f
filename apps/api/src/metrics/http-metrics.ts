import type { NextFunction, Request, Response } from 'express';
import { AppMetrics, UNMATCHED_ROUTE } from './app-metrics';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/**
 * Express middleware, mounted first: times every request to the end of its response and labels it
 * with the route TEMPLATE Express matched (`/v1/:scopeId/devices/:deviceId/vpn`), never the raw
 * path, so ids never become label values. A request no route handled (404, CORS preflight, a body
 * refused before routing, static files) is labelled UNMATCHED_ROUTE.
 */
export function httpMetrics(metrics: AppMetrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    // 'close' fires for every response, finished or cut off by the client.
    res.once('close', () => {
      const route = (req.route as { path?: unknown } | undefined)?.path;
      metrics.httpRequestDuration.observe(
        {
          method: METHODS.has(req.method) ? req.method : 'OTHER',
          route: typeof route === 'string' ? req.baseUrl + route : UNMATCHED_ROUTE,
          status_code: String(res.statusCode),
        },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    });
    next();
  };
}
