import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiResponse } from '@nestjs/swagger';
import { ErrorBodyDto } from './error-body.dto';

const DESCRIPTIONS: Record<number, string> = {
  400: 'INVALID_ARGUMENT: the request is malformed or a field is invalid',
  401: 'UNAUTHORIZED: missing, expired or revoked token',
  403: "FORBIDDEN: the scope is outside the caller's accounts, or the role lacks the permission",
  404: 'NOT_FOUND',
  409: 'ENTRY_EXISTS, OPTLOCK_CONFLICT or another conflict',
  429: 'RATE_LIMITED',
  500: 'INTERNAL_ERROR or STORAGE_ERROR',
  502: 'DEVICE_ERROR: the device answered with an error',
  503: 'SERVICE_UNAVAILABLE',
  504: 'DEVICE_TIMEOUT: the device did not answer in time',
};

/** Documents the error responses of a route with the error body schema. */
export function ApiErrors(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...statuses.map((status) =>
      ApiResponse({ status, description: DESCRIPTIONS[status], type: ErrorBodyDto }),
    ),
  );
}

/** A route behind the bearer token: documents the security scheme and the auth errors. */
export function ApiAuthenticated(): MethodDecorator & ClassDecorator {
  return applyDecorators(ApiBearerAuth('bearer'), ApiErrors(401, 403, 500));
}
