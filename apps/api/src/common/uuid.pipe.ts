import { Param, type ArgumentMetadata, type PipeTransform } from '@nestjs/common';
import { ApiParam } from '@nestjs/swagger';
import { AppError } from './app-error';

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Path ids must be UUIDs; anything else is 400 INVALID_ARGUMENT, never a database error. The id
 * comes out in lower case: Postgres compares uuids in any case, but the code compares ids as
 * strings (e.g. "is this the caller's own account"), so an id has one spelling from here on.
 */
class UuidPipe implements PipeTransform<unknown, Promise<string>> {
  // Async like Nest's ParseUUIDPipe, which it replaces (callers await it).
  transform(value: unknown, _metadata?: ArgumentMetadata): Promise<string> {
    if (typeof value !== 'string' || !UUID_PATTERN.test(value)) {
      return Promise.reject(AppError.invalid('Invalid id', 'The id in the path must be a UUID'));
    }
    return Promise.resolve(value.toLowerCase());
  }
}

export const uuidPipe = new UuidPipe();

/**
 * `@UuidParam('deviceId')`: the path parameter through uuidPipe, documented as `format: uuid`,
 * so what the route checks and what the spec says cannot drift apart.
 */
export function UuidParam(name: string): ParameterDecorator {
  return (target, key, index) => {
    Param(name, uuidPipe)(target, key, index);
    // Parameter decorators run before the method's: the swagger metadata joins the method's own.
    const descriptor = Object.getOwnPropertyDescriptor(target, key!)!;
    ApiParam({ name, schema: { type: 'string', format: 'uuid' } })(target, key!, descriptor);
  };
}
