import { applyDecorators } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Max, Min } from 'class-validator';
import type { FindOptionsWhere, ObjectLiteral, Repository } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity';
import { AppError } from './app-error';

/** The optlock column is a Postgres integer: larger values would fail in the database (a 500). */
export const MAX_OPTLOCK = 2_147_483_647;

/**
 * The optlock field of every update body: a required integer from 0 to 2^31-1. One decorator,
 * so no update DTO can accept a value the column cannot hold.
 */
export function OptlockField(description?: string): PropertyDecorator {
  return applyDecorators(
    ApiProperty({ ...(description ? { description } : {}), minimum: 0, maximum: MAX_OPTLOCK }),
    IsInt(),
    Min(0),
    Max(MAX_OPTLOCK),
  );
}

/**
 * Applies `changes` only if the row still has the optlock value the caller read;
 * otherwise 409 OPTLOCK_CONFLICT (or 404 when the row is gone or not in scope).
 */
export async function updateWithOptlock<E extends ObjectLiteral & { optlock: number }>(
  repo: Repository<E>,
  where: FindOptionsWhere<E>,
  optlock: number,
  changes: QueryDeepPartialEntity<E>,
  what: string,
): Promise<E> {
  const result = await repo
    .createQueryBuilder()
    .update()
    .set({ ...changes, optlock: () => 'optlock + 1', modifiedOn: () => 'now()' })
    .where(where)
    .andWhere('optlock = :optlock', { optlock })
    .execute();
  const current = await repo.findOne({ where });
  if (!current) throw AppError.notFound(what);
  if (!result.affected) {
    throw new AppError(
      'OPTLOCK_CONFLICT',
      `${what} was modified by someone else`,
      `Expected optlock ${optlock}, current is ${current.optlock}; read it again and retry`,
    );
  }
  return current;
}
