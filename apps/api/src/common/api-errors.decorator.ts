import { applyDecorators } from '@nestjs/common';
import { ApiResponse, DECORATORS } from '@nestjs/swagger';
import { ErrorBodyDto } from './error-body.dto';

const DESCRIPTIONS: Record<number, string> = {
  400: 'INVALID_ARGUMENT: the request is malformed or a field is invalid',
  401: 'UNAUTHORIZED: missing, expired or revoked token',
  403: "FORBIDDEN: the scope is outside the caller's accounts, or the role lacks the permission",
  404: 'NOT_FOUND',
  409: 'ENTRY_EXISTS, OPTLOCK_CONFLICT or another conflict',
  429: 'RATE_LIMITED: too many requests (Retry-After says when to retry)',
  500: 'INTERNAL_ERROR or STORAGE_ERROR',
  502: 'DEVICE_ERROR: the device answered with an error',
  503: 'SERVICE_UNAVAILABLE: e.g. the database cannot be reached (Retry-After)',
  504: 'DEVICE_TIMEOUT: the device did not answer in time',
};

/**
 * Documents the error responses of a route with the error body schema. A status the route
 * already documents is left as it is (Authenticated and ApiErrors on one route would
 * otherwise concatenate their descriptions).
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
        ApiResponse({ status, description: DESCRIPTIONS[status], type: ErrorBodyDto }),
      ),
    );
    // applyDecorators' result serves classes and methods alike.
    decorate(target, key, descriptor);
  };
}
