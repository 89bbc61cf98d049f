import { QueryFailedError } from 'typeorm';

/** Postgres SQLSTATE of a failed query, if it is one. */
export function pgCode(err: unknown): string | undefined {
  if (!(err instanceof QueryFailedError)) return undefined;
  return (err.driverError as { code?: string } | undefined)?.code;
}

export function pgConstraint(err: unknown): string | undefined {
  if (!(err instanceof QueryFailedError)) return undefined;
  return (err.driverError as { constraint?: string } | undefined)?.constraint;
}

export const isUniqueViolation = (err: unknown): boolean => pgCode(err) === '23505';
export const isExclusionViolation = (err: unknown): boolean => pgCode(err) === '23P01';
// 23503 foreign_key_violation; 23001 restrict_violation is what an ON DELETE RESTRICT key raises.
export const isForeignKeyViolation = (err: unknown): boolean => {
  const code = pgCode(err);
  return code === '23503' || code === '23001';
};
