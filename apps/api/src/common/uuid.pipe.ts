import { ParseUUIDPipe } from '@nestjs/common';
import { AppError } from './app-error';

/** Path ids must be UUIDs; anything else is 400 INVALID_ARGUMENT, never a database error. */
export const uuidPipe = new ParseUUIDPipe({
  exceptionFactory: () => AppError.invalid('Invalid id', 'The id in the path must be a UUID'),
});
