import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { QueryFailedError } from 'typeorm';
import { AppError, ErrorBody, ErrorCode } from './app-error';
import { pgCode } from './db-errors';
import { isDbUnavailableError } from './transient-retry';

/** Seconds a client is asked to wait when the database is unreachable. */
const DB_RETRY_AFTER_SECONDS = 5;

/**
 * SQLSTATEs a request's values cause (class 22, data exception): a number out of range, text
 * that is not a valid value of its type, a character the encoding cannot hold, a string too long.
 * Validation should refuse these first; if one slips through, it is still the client's 400.
 */
const CLIENT_DATA_ERRORS = new Set(['22001', '22003', '22007', '22008', '22021', '22P02', '22P05']);

const HTTP_STATUS_CODES: Record<number, ErrorCode> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'INVALID_ARGUMENT',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'INVALID_ARGUMENT',
  429: 'RATE_LIMITED',
  503: 'SERVICE_UNAVAILABLE',
};

/**
 * What a failed query logs: the statement and the Postgres error, never the
 * bound parameters (or the error's detail, which quotes values): they may hold
 * password hashes, token digests or other secrets.
 */
function storageErrorForLog(err: QueryFailedError<Error>): Record<string, unknown> {
  const driver = (err.driverError ?? {}) as unknown as Record<string, unknown>;
  return {
    type: 'QueryFailedError',
    message: err.message,
    query: err.query,
    code: driver.code,
    constraint: driver.constraint,
    table: driver.table,
    column: driver.column,
    stack: err.stack,
  };
}

interface BodyParserError {
  type?: string;
  status?: number;
  expose?: boolean;
}

/**
 * The one place errors become HTTP responses. Every error, whatever threw it,
 * leaves as `{result, error, details}`; nothing internal (stack, SQL, class
 * names) is ever sent. Unexpected errors are logged with the request id.
 */
@Catch()
export class AppExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request>();
    const { status, body, headers } = this.toBody(exception, req);
    if (res.headersSent) return;
    for (const [k, v] of Object.entries(headers ?? {})) res.setHeader(k, v);
    res.status(status).json(body);
  }

  toBody(
    exception: unknown,
    req: Request,
  ): { status: number; body: ErrorBody; headers?: Record<string, string> } {
    if (exception instanceof AppError) {
      return {
        status: exception.status,
        body: { result: exception.code, error: exception.message, details: exception.details ?? '' },
        headers: exception.headers,
      };
    }
    const parserError = exception as BodyParserError;
    if (parserError && typeof parserError === 'object' && typeof parserError.type === 'string') {
      if (parserError.type === 'entity.parse.failed') {
        return this.simple(
          400,
          'INVALID_ARGUMENT',
          'Malformed JSON body',
          'The request body is not valid JSON',
        );
      }
      if (parserError.type === 'entity.too.large') {
        return this.simple(413, 'PAYLOAD_TOO_LARGE', 'Request body too large', 'Send a smaller body');
      }
      if (parserError.type.startsWith('encoding.') || parserError.type === 'charset.unsupported') {
        return this.simple(415, 'INVALID_ARGUMENT', 'Unsupported body encoding', parserError.type);
      }
      // Any other refusal of a body parser (too deeply nested form data, too many parameters…).
      if (typeof parserError.status === 'number' && parserError.status >= 400 && parserError.status < 500) {
        return this.simple(400, 'INVALID_ARGUMENT', 'Malformed body', parserError.type);
      }
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = HTTP_STATUS_CODES[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'INVALID_ARGUMENT');
      const response = exception.getResponse();
      const message = typeof response === 'string' ? response : (response as { message?: unknown }).message;
      if (status === 404 && typeof message === 'string' && message.startsWith('Cannot ')) {
        return this.simple(404, 'NOT_FOUND', 'Route not found', `No route ${req.method} ${req.path}`);
      }
      const details = Array.isArray(message)
        ? message.join('; ')
        : typeof message === 'string'
          ? message
          : '';
      return this.simple(status, code, this.titleFor(code), details);
    }
    const requestId = String(req.id ?? '');
    if (isDbUnavailableError(exception)) {
      this.logger.error(
        {
          requestId,
          err:
            exception instanceof QueryFailedError
              ? storageErrorForLog(exception as QueryFailedError<Error>)
              : exception,
        },
        'database unavailable',
      );
      return {
        ...this.simple(
          503,
          'SERVICE_UNAVAILABLE',
          'Service unavailable',
          `The database cannot be reached; retry later (request id ${requestId})`,
        ),
        headers: { 'Retry-After': String(DB_RETRY_AFTER_SECONDS) },
      };
    }
    if (exception instanceof QueryFailedError && CLIENT_DATA_ERRORS.has(pgCode(exception) ?? '')) {
      this.logger.warn(
        { requestId, err: storageErrorForLog(exception as QueryFailedError<Error>) },
        'a value the database refused',
      );
      return this.simple(
        400,
        'INVALID_ARGUMENT',
        'Invalid argument',
        'A value is out of range or not valid for its field',
      );
    }
    if (exception instanceof QueryFailedError) {
      this.logger.error(
        { requestId, err: storageErrorForLog(exception as QueryFailedError<Error>) },
        'storage error',
      );
      return this.simple(500, 'STORAGE_ERROR', 'Storage error', `Request id ${requestId}`);
    }
    this.logger.error({ requestId, err: exception }, 'unexpected error');
    return this.simple(500, 'INTERNAL_ERROR', 'Internal error', `Request id ${requestId}`);
  }

  private simple(status: number, result: ErrorCode, error: string, details: string) {
    return { status, body: { result, error, details } };
  }

  private titleFor(code: ErrorCode): string {
    switch (code) {
      case 'INVALID_ARGUMENT':
        return 'Invalid argument';
      case 'UNAUTHORIZED':
        return 'Authentication required';
      case 'FORBIDDEN':
        return 'Access denied';
      case 'NOT_FOUND':
        return 'Not found';
      case 'RATE_LIMITED':
        return 'Too many requests';
      case 'SERVICE_UNAVAILABLE':
        return 'Service unavailable';
      default:
        return 'Request failed';
    }
  }
}
