import { ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { DECORATORS } from '@nestjs/swagger';
import {
  getMetadataStorage,
  IS_OPTIONAL,
  IS_UUID,
  ValidationTypes,
  type ValidatorOptions,
} from 'class-validator';
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

interface PropertyRules {
  optional: boolean;
  uuid: boolean;
  nested: boolean;
  /** Documented as nullable in the OpenAPI spec (@ApiProperty({ nullable: true })). */
  nullable: boolean;
}

/** A DTO class (class-validator and the OpenAPI decorators key their metadata by it). */
type DtoClass = abstract new (...args: never[]) => object;

const rulesCache = new Map<DtoClass, Map<string, PropertyRules>>();

/** What class-validator and the OpenAPI decorators say about each property of a DTO class. */
function rulesOf(target: DtoClass): Map<string, PropertyRules> {
  let rules = rulesCache.get(target);
  if (rules) return rules;
  rules = new Map();
  for (const meta of getMetadataStorage().getTargetValidationMetadatas(target, '', false, false)) {
    const name = meta.propertyName;
    const rule = rules.get(name) ?? {
      optional: false,
      uuid: false,
      nested: false,
      nullable:
        (
          Reflect.getMetadata(DECORATORS.API_MODEL_PROPERTIES, target.prototype as object, name) as
            { nullable?: boolean } | undefined
        )?.nullable === true,
    };
    if (meta.type === ValidationTypes.CONDITIONAL_VALIDATION && meta.name === IS_OPTIONAL)
      rule.optional = true;
    if (meta.name === IS_UUID) rule.uuid = true;
    if (meta.type === ValidationTypes.NESTED_VALIDATION) rule.nested = true;
    rules.set(name, rule);
  }
  rulesCache.set(target, rules);
  return rules;
}

const isDto = (value: unknown): value is object =>
  value !== null && typeof value === 'object' && value.constructor !== Object && !Array.isArray(value);

/**
 * `null` is not a value for an optional field: @IsOptional() skips every validator for null as
 * for a missing field, so `{"password": null}` reached scrypt. Null passes only where the DTO
 * documents it (`nullable: true` in @ApiProperty), e.g. a device's gatewayId, null to unpin.
 */
function nullErrors(dto: object): ValidationError[] {
  const errors: ValidationError[] = [];
  for (const [property, rule] of rulesOf(dto.constructor as DtoClass)) {
    const value = (dto as Record<string, unknown>)[property];
    if (value === null && rule.optional && !rule.nullable) {
      errors.push({
        property,
        value,
        children: [],
        constraints: { isNotNull: `${property} must not be null` },
      });
    } else if (rule.nested) {
      const items = Array.isArray(value) ? value : [value];
      const children = items.flatMap((item, i) => {
        if (!isDto(item)) return [];
        const inner = nullErrors(item);
        return Array.isArray(value) && inner.length
          ? [{ property: String(i), children: inner, constraints: {} }]
          : inner;
      });
      if (children.length) {
        errors.push({ property, children, constraints: {} });
      }
    }
  }
  return errors;
}

/** UUIDs are compared as text in places (scope checks, ids in memory): keep one spelling, lower case. */
function lowerCaseUuids(dto: object): void {
  for (const [property, rule] of rulesOf(dto.constructor as DtoClass)) {
    const record = dto as Record<string, unknown>;
    const value = record[property];
    if (rule.uuid) {
      if (typeof value === 'string') record[property] = value.toLowerCase();
      else if (Array.isArray(value)) {
        record[property] = value.map((v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v));
      }
    }
    if (rule.nested)
      for (const item of Array.isArray(value) ? value : [value]) if (isDto(item)) lowerCaseUuids(item);
  }
}

/**
 * The global pipe. Besides Nest's ValidationPipe (whitelist, transform): refuses null in
 * optional fields that are not documented as nullable, and lower-cases every @IsUUID field.
 * Bodies reach it already checked for control characters and nesting depth (input-guard.ts).
 */
class AppValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const result: unknown = await super.transform(value, metadata);
    if (isDto(result)) lowerCaseUuids(result);
    return result;
  }

  protected override async validate(
    object: object,
    validatorOptions?: ValidatorOptions,
  ): Promise<ValidationError[]> {
    const errors = await super.validate(object, validatorOptions);
    return [...errors, ...nullErrors(object)];
  }
}

/** Global validation: unknown fields are an error, not silently dropped (CONVENTIONS). */
export function createValidationPipe(): ValidationPipe {
  return new AppValidationPipe({
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
