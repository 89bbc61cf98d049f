import { applyDecorators } from '@nestjs/common';
import {
  ApiResponse,
  DECORATORS,
  getSchemaPath,
  type ApiResponseExamples,
  type ExampleObject,
  type ResponseObject,
} from '@nestjs/swagger';
import { ErrorCodes, type ErrorBody, type ErrorCode } from './app-error';
import { ErrorBodyDto } from './error-body.dto';

const DESCRIPTIONS: Record<number, string> = {
  400: 'INVALID_ARGUMENT: the request is malformed or a field is invalid',
  401: 'UNAUTHORIZED or AUTH_FAILED: missing, expired or revoked token, or wrong credentials',
  403: "FORBIDDEN: the scope is outside the caller's accounts, or the role lacks the permission",
  404: 'NOT_FOUND',
  409: 'ENTRY_EXISTS, OPTLOCK_CONFLICT or another conflict',
  413: 'PAYLOAD_TOO_LARGE: the body exceeds HTTP_BODY_LIMIT (default 100kb)',
  429: 'RATE_LIMITED: too many requests (Retry-After says when to retry)',
  500: 'INTERNAL_ERROR, STORAGE_ERROR or TUNNEL_ERROR',
  502: 'DEVICE_ERROR: the device answered with an error',
  503: 'SERVICE_UNAVAILABLE or GATEWAY_UNAVAILABLE: e.g. the database cannot be reached (Retry-After)',
  504: 'DEVICE_TIMEOUT or GATEWAY_TIMEOUT: the device or gateway did not answer in time',
  507: 'INSUFFICIENT_STORAGE: no free address is left in a pool',
};

/**
 * One example body per error code, shown under each status that code answers with. A Record
 * over ErrorCode: a new code does not compile until it has its example.
 */
const EXAMPLES: Record<ErrorCode, Omit<ErrorBody, 'result'>> = {
  INVALID_ARGUMENT: {
    error: 'Invalid value for name',
    details: 'name must be shorter than or equal to 64 characters',
  },
  UNAUTHORIZED: { error: 'Authentication required', details: 'Send an Authorization: Bearer <token> header' },
  AUTH_FAILED: { error: 'Authentication failed', details: 'Wrong username or password' },
  FORBIDDEN: { error: 'Access denied', details: 'The viewer role lacks the device:write permission' },
  NOT_FOUND: { error: 'Device not found', details: 'No device with this id in the scope' },
  ENTRY_EXISTS: { error: 'Username already taken', details: 'A user named alice exists' },
  OPTLOCK_CONFLICT: {
    error: 'Device was modified by someone else',
    details: 'Expected optlock 3, current is 4; read it again and retry',
  },
  CONFLICT: { error: 'Device is disabled', details: 'Enable the device first' },
  DEVICE_NOT_CONNECTED: {
    error: 'Device not connected',
    details: 'The device is DISCONNECTED; it must be connected to the broker',
  },
  NO_GATEWAY: {
    error: 'No VPN gateway for this device',
    details:
      "The device has a WireGuard key, so its tunnel needs a gateway: create one in the device's account",
  },
  VPN_NOT_CONNECTED: {
    error: "The device's VPN is not connected",
    details: 'Connect the device first (POST …/vpn/_connect), then open the session',
  },
  PAYLOAD_TOO_LARGE: { error: 'Request body too large', details: 'Send a smaller body' },
  RATE_LIMITED: {
    error: 'Too many requests',
    details: 'At most 600 requests per minute per user or API key; retry in 12 s',
  },
  INTERNAL_ERROR: { error: 'Internal error', details: 'Request id 7f3c2a9e-5d1b-4c8f-9a6e-2b4d8c1e0f37' },
  STORAGE_ERROR: { error: 'Storage error', details: 'Request id 7f3c2a9e-5d1b-4c8f-9a6e-2b4d8c1e0f37' },
  TUNNEL_ERROR: { error: 'Tunnel error', details: 'Location eu-west is offline; try another one' },
  DEVICE_ERROR: { error: 'Device reported an error', details: 'wg-quick: interface already exists' },
  SERVICE_UNAVAILABLE: {
    error: 'Service unavailable',
    details: 'The database cannot be reached; retry later',
  },
  GATEWAY_UNAVAILABLE: { error: 'Gateway unavailable', details: 'Gateway eu-west is not connected' },
  DEVICE_TIMEOUT: { error: 'Device did not answer in time', details: 'No reply within the timeout' },
  GATEWAY_TIMEOUT: {
    error: 'Gateway did not confirm in time',
    details: 'The gateway did not acknowledge the peer change before the timeout',
  },
  INSUFFICIENT_STORAGE: {
    error: 'No free client address',
    details: 'Every address of the client pool is in use; end sessions or widen VPN_CLIENT_POOL',
  },
};

/** `components.examples` of the document: one error body per error code, named by the code. */
export function errorExamples(): Record<string, ExampleObject> {
  return Object.fromEntries(
    (Object.keys(ErrorCodes) as ErrorCode[]).map((code) => [
      code,
      { summary: `${code} (${ErrorCodes[code]})`, value: { result: code, ...EXAMPLES[code] } },
    ]),
  );
}

/** References to the examples of these error codes, keyed by code (for a response's `examples`). */
export function errorExampleRefs(...codes: ErrorCode[]): Record<string, ApiResponseExamples> {
  // Reference Objects, which ApiResponse's type does not model: the document defines them once.
  return Object.fromEntries(
    codes.map((code) => [code, { $ref: `#/components/examples/${code}` } as unknown as ApiResponseExamples]),
  );
}

/** References to the examples of every error code that answers with `status`. */
function examplesOf(status: number): Record<string, ApiResponseExamples> {
  return errorExampleRefs(
    ...(Object.keys(ErrorCodes) as ErrorCode[]).filter((code) => ErrorCodes[code] === status),
  );
}

/**
 * The response object of an error status: the error body, with an example per error code. For
 * the errors the OpenAPI document derives from an operation's shape (400, 413; see openapi.ts).
 */
export function errorResponse(status: number): ResponseObject {
  return {
    description: DESCRIPTIONS[status],
    content: {
      'application/json': {
        schema: { $ref: getSchemaPath(ErrorBodyDto) },
        examples: examplesOf(status),
      },
    },
  };
}

/**
 * Documents the error responses of a route with the error body schema and an example per error
 * code. A status the route already documents is left as it is (Authenticated and ApiErrors on
 * one route would otherwise concatenate their descriptions).
 */
export function ApiErrors(...statuses: number[]): MethodDecorator & ClassDecorator {
  return (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
    const holder: object = descriptor ? (descriptor.value as object) : target;
    const documented = (Reflect.getMetadata(DECORATORS.API_RESPONSE, holder) ?? {}) as Record<
      string,
      unknown
    >;
    const missing = statuses.filter((status) => !(String(status) in documented));
    const decorate = applyDecorators(
      ...missing.map((status) =>
        ApiResponse({
          status,
          description: DESCRIPTIONS[status],
          type: ErrorBodyDto,
          examples: examplesOf(status),
        }),
      ),
    );
    // applyDecorators' result serves classes and methods alike.
    decorate(target, key, descriptor);
  };
}
