import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsOptional, IsString, IsUUID, ValidateIf, ValidateNested } from 'class-validator';
import { AppError } from './app-error';
import { OptlockField } from './optlock';
import { createValidationPipe } from './validation.pipe';

class InnerDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  label?: string;

  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  ref: string;
}

class BodyDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  password?: string;

  @ApiPropertyOptional({ nullable: true, type: String, description: 'null clears it' })
  @ValidateIf((_o, v) => v !== null)
  @IsOptional()
  @IsUUID()
  gatewayId?: string | null;

  @ApiPropertyOptional({ type: InnerDto })
  @IsOptional()
  @ValidateNested()
  @Type(() => InnerDto)
  inner?: InnerDto;

  @OptlockField()
  optlock: number;
}

const pipe = createValidationPipe();
const run = (value: unknown) => pipe.transform(value, { type: 'body', metatype: BodyDto });

const refusal = async (value: unknown): Promise<AppError> => {
  try {
    await run(value);
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('accepted');
};

const UPPER = '8F14E45F-CEEA-467F-A0E6-D1F0B2A4C3B7';

describe('the global validation pipe', () => {
  it('should refuse null in an optional field, naming it', async () => {
    const err = await refusal({ password: null, optlock: 1 });
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('password');
    expect(err.details).toContain('password must not be null');
  });

  it('should refuse null in an optional field of a nested object', async () => {
    const err = await refusal({ inner: { label: null, ref: UPPER }, optlock: 1 });
    expect(err.details).toContain('inner.label must not be null');
  });

  it('should accept null where the DTO documents it as nullable', async () => {
    await expect(run({ gatewayId: null, optlock: 1 })).resolves.toMatchObject({ gatewayId: null });
  });

  it('should still accept a missing optional field', async () => {
    await expect(run({ optlock: 1 })).resolves.toMatchObject({ optlock: 1 });
  });

  it.each([2 ** 31, 2 ** 53, 1e300, -1, 1.5])('should refuse optlock %s', async (optlock) => {
    expect((await refusal({ optlock })).message).toContain('optlock');
  });

  it('should accept the largest optlock Postgres can hold', async () => {
    await expect(run({ optlock: 2 ** 31 - 1 })).resolves.toMatchObject({ optlock: 2147483647 });
  });

  it('should lower-case UUID fields, nested ones included', async () => {
    const result = (await run({ gatewayId: UPPER, inner: { ref: UPPER }, optlock: 0 })) as BodyDto;
    expect(result.gatewayId).toBe(UPPER.toLowerCase());
    expect(result.inner?.ref).toBe(UPPER.toLowerCase());
  });
});
