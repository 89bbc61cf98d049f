import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsInt, IsOptional, Max, Min } from 'class-validator';
import {
  SelectQueryBuilder,
  type FindOptionsOrder,
  type FindOptionsWhere,
  type ObjectLiteral,
  type Repository,
} from 'typeorm';

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

/** The rows to page through: a repository with a filter and an order, or an ordered query builder. */
export type PageSource<E extends ObjectLiteral> =
  { from: Repository<E>; where: FindOptionsWhere<E>; order: FindOptionsOrder<E> } | SelectQueryBuilder<E>;

/**
 * One page of a list: fetches limit + 1 rows from `offset` (the extra row only sets
 * limitExceeded) and, when askTotalCount is set, counts the same rows in parallel.
 */
export async function paginate<E extends ObjectLiteral, T>(
  source: PageSource<E>,
  query: ListQueryDto,
  map: (e: E) => T,
): Promise<ListResult<T>> {
  const [rows, total] = await Promise.all([
    source instanceof SelectQueryBuilder
      ? source
          .clone()
          .offset(query.offset)
          .limit(query.limit + 1)
          .getMany()
      : source.from.find({
          where: source.where,
          order: source.order,
          skip: query.offset,
          take: query.limit + 1,
        }),
    !query.askTotalCount
      ? Promise.resolve(undefined)
      : source instanceof SelectQueryBuilder
        ? source.getCount()
        : source.from.count({ where: source.where }),
  ]);
  return toListResult(rows, query, map, total);
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
