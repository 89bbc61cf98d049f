import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';

/** Query strings carry booleans as text; only `true`/`false` are accepted. */
export const BooleanQuery = () =>
  Transform(({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value));

/** Kapua-style paging: offset, limit (max 500), askTotalCount. */
export class ListQueryDto {
  @ApiPropertyOptional({ minimum: 0, default: 0 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  offset: number = 0;

  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit: number = 50;

  @ApiPropertyOptional({ default: false })
  @IsOptional()
  @BooleanQuery()
  @IsBoolean()
  askTotalCount: boolean = false;
}

export interface ListResult<T> {
  items: T[];
  size: number;
  limitExceeded: boolean;
  totalCount?: number;
}

/**
 * Builds the list body from a page fetched with limit + 1 rows: the extra row
 * only tells whether more exist (limitExceeded) and is not returned.
 */
export function toListResult<E, T>(
  rows: E[],
  query: ListQueryDto,
  map: (e: E) => T,
  totalCount?: number,
): ListResult<T> {
  const limitExceeded = rows.length > query.limit;
  const items = (limitExceeded ? rows.slice(0, query.limit) : rows).map(map);
  return { items, size: items.length, limitExceeded, ...(totalCount !== undefined ? { totalCount } : {}) };
}

export abstract class ListResultDto {
  @ApiProperty()
  size: number;

  @ApiProperty()
  limitExceeded: boolean;

  @ApiPropertyOptional({ description: 'Present when askTotalCount=true' })
  totalCount?: number;
}

export class EntityDto {
  @ApiProperty({ format: 'uuid' })
  id: string;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  scopeId: string | null;

  @ApiProperty()
  createdOn: Date;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  createdBy: string | null;
}

export class UpdatableEntityDto extends EntityDto {
  @ApiProperty()
  modifiedOn: Date;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  modifiedBy: string | null;

  @ApiProperty({ description: 'Send the current value back on update (optimistic lock)' })
  optlock: number;
}
