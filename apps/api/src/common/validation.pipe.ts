import { ValidationError, ValidationPipe } from '@nestjs/common';
import { AppError } from './app-error';

function describe(errors: ValidationError[], prefix = ''): string[] {
  const out: string[] = [];
  for (const e of errors) {
    const path = prefix ? `${prefix}.${e.property}` : e.property;
    if (e.constraints) {
      for (const msg of Object.values(e.constraints)) {
        // class-validator puts the bare property name first; show the full path instead.
        out.push(msg.startsWith(e.property) ? `${path}${msg.slice(e.property.length)}` : `${path}: ${msg}`);
      }
    }
    if (e.children?.length) out.push(...describe(e.children, path));
  }
  return out;
}

/** Global validation: unknown fields are an error, not silently dropped (CONVENTIONS). */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    stopAtFirstError: false,
    exceptionFactory: (errors) => {
      const fields = [...new Set(errors.map((e) => e.property))];
      return AppError.invalid(`Invalid value for ${fields.join(', ')}`, describe(errors).join('; '));
    },
  });
}
