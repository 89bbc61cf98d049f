/**
 * Typed domain errors. Services throw these; the global exception filter maps
 * them to the documented error body `{result, error, details}` (README, REST conventions).
 */
export const ErrorCodes = {
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  AUTH_FAILED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  ENTRY_EXISTS: 409,
  OPTLOCK_CONFLICT: 409,
  CONFLICT: 409,
  DEVICE_NOT_CONNECTED: 409,
  NO_GATEWAY: 409,
  VPN_NOT_CONNECTED: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL_ERROR: 500,
  STORAGE_ERROR: 500,
  TUNNEL_ERROR: 500,
  DEVICE_ERROR: 502,
  SERVICE_UNAVAILABLE: 503,
  GATEWAY_UNAVAILABLE: 503,
  DEVICE_TIMEOUT: 504,
  GATEWAY_TIMEOUT: 504,
  INSUFFICIENT_STORAGE: 507,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: string,
    /** Extra headers for the response, e.g. Retry-After on RATE_LIMITED. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  get status(): number {
    return ErrorCodes[this.code];
  }

  static notFound(what: string, details?: string): AppError {
    return new AppError('NOT_FOUND', `${what} not found`, details);
  }

  static invalid(message: string, details?: string): AppError {
    return new AppError('INVALID_ARGUMENT', message, details);
  }

  static forbidden(details?: string): AppError {
    return new AppError('FORBIDDEN', 'Access denied', details);
  }

  static conflict(message: string, details?: string): AppError {
    return new AppError('CONFLICT', message, details);
  }
}

/** The documented error body. */
export interface ErrorBody {
  result: ErrorCode;
  error: string;
  details: string;
}
