// Browser safety of the local API. Any web page the engineer opens can send requests to
// localhost, so: only loopback Host names (no DNS rebinding), and only the configured web
// origins may call it from a browser (CORS); a request with any other Origin is refused outright.

/** The headers a portal sends (IXON's) plus the JSON content type; what a preflight may ask for. */
export const ALLOWED_REQUEST_HEADERS = [
  'Api-Version',
  'VPN-Client-Controller-Identifier',
  'Api-Access-Token',
  'Api-Sector',
  'Content-Type',
] as const;
export const ALLOWED_METHODS = ['GET', 'POST', 'PUT'] as const;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
/** Preflight answers may be cached this long by the browser. */
const PREFLIGHT_MAX_AGE_SEC = 600;

/**
 * True for `localhost`, `127.0.0.1` or `[::1]`, each with an optional port. A page on
 * `evil.example` whose name was re-pointed at 127.0.0.1 (DNS rebinding) still sends its own name
 * in Host, and is refused here.
 */
export function isAllowedHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host.toLowerCase());
  return match !== null && LOOPBACK_HOSTS.has(match[1]);
}

export type OriginVerdict =
  { kind: 'none' } | { kind: 'allowed'; origin: string } | { kind: 'forbidden'; origin: string };

/**
 * No Origin: not a cross-origin browser request (curl, a native app, a top-level navigation),
 * allowed. An Origin in the list: allowed with CORS. Any other Origin, `null` included: refused
 * before the request has any effect, which also stops "simple" requests (a form POST) that
 * CORS alone would let through.
 */
export function checkOrigin(origin: string | undefined, allowed: ReadonlySet<string>): OriginVerdict {
  if (origin === undefined) return { kind: 'none' };
  return allowed.has(origin) ? { kind: 'allowed', origin } : { kind: 'forbidden', origin };
}

/** Headers on every answer to an allowed origin. */
export function corsHeaders(origin: string): Record<string, string> {
  return { 'Access-Control-Allow-Origin': origin };
}

/**
 * The answer to a preflight from an allowed origin. `Access-Control-Allow-Private-Network` is
 * what Chrome asks for (Private Network Access) before a public page may call a loopback address.
 */
export function preflightHeaders(origin: string, privateNetworkRequested: boolean): Record<string, string> {
  return {
    ...corsHeaders(origin),
    'Access-Control-Allow-Methods': ALLOWED_METHODS.join(', '),
    'Access-Control-Allow-Headers': ALLOWED_REQUEST_HEADERS.join(', '),
    'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_SEC),
    ...(privateNetworkRequested ? { 'Access-Control-Allow-Private-Network': 'true' } : {}),
  };
}
