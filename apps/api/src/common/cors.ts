import type { NextFunction, Request, Response } from 'express';

/** Every method the API serves. */
const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE';
/** What a dashboard sends: its bearer token, JSON bodies, conditional list reads, SSE resumption. */
const ALLOWED_HEADERS = 'Authorization, Content-Type, If-None-Match, Last-Event-ID';
/** What a dashboard may read: list ETags, where an async operation lives, how long to back off. */
const EXPOSED_HEADERS = 'ETag, Location, Retry-After';
/** How long a browser may reuse a preflight answer. */
const PREFLIGHT_MAX_AGE_SECONDS = '600';

/**
 * CORS for the origins in CORS_ORIGINS (exact matches), mounted before everything else: a
 * preflight from an allowed origin is answered here (204), so no guard, rate limit or input check
 * ever sees it; the actual request then goes through the whole pipeline, bearer token and all.
 * Requests from any other origin get no CORS header at all, so the browser keeps the answer from
 * the page. No credentials (cookies) are involved: the API authenticates by bearer token only,
 * so Access-Control-Allow-Credentials is never sent. docs/cors.md.
 */
export function cors(allowedOrigins: readonly string[]) {
  const allowed = new Set(allowedOrigins);
  return (req: Request, res: Response, next: NextFunction): void => {
    // Shared caches must not serve one origin's answer to another.
    res.vary('Origin');
    const origin = req.headers.origin;
    if (typeof origin !== 'string' || !allowed.has(origin)) return next();
    res.setHeader('Access-Control-Allow-Origin', origin);
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!preflight) {
      res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
      return next();
    }
    res.setHeader('Access-Control-Allow-Methods', ALLOWED_METHODS);
    res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
    res.setHeader('Access-Control-Max-Age', PREFLIGHT_MAX_AGE_SECONDS);
    res.setHeader('Content-Length', '0');
    res.status(204).end();
  };
}
