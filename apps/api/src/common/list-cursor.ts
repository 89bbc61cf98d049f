import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, ValidateBy, type ValidationArguments } from 'class-validator';
import { CLIENT_ID_PATTERN } from '@app/protocol';
import { ListQueryDto, ListResultDto } from './list';

/**
 * Keyset paging for the device lists (the device list and the fleet status), which are ordered by
 * client id, then device id. A page's `nextCursor` names its last device; the next page starts
 * after it. Unlike `offset`, a walk by cursor neither skips nor repeats a device when devices are
 * created or deleted meanwhile, and every page costs the same however deep it is (an index range
 * instead of `offset` index entries walked and thrown away).
 *
 * The cursor is opaque to callers: base64url of `<clientId>\n<deviceId>`. Client ids cannot hold a
 * line feed (CLIENT_ID_PATTERN). database/sql-json.ts writes the same text in SQL (cursorText).
 */
export interface ListCursor {
  clientId: string;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** base64url of the longest cursor (64 + 1 + 36 bytes) is 135 characters. */
const MAX_CURSOR_LENGTH = 200;

export function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(`${cursor.clientId}\n${cursor.id}`, 'utf8').toString('base64url');
}

/** The position a cursor names, or null when the text is not a cursor this API wrote. */
export function decodeCursor(text: unknown): ListCursor | null {
  if (typeof text !== 'string' || text.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(text))
    return null;
  const parts = Buffer.from(text, 'base64url').toString('utf8').split('\n');
  if (parts.length !== 2) return null;
  const [clientId, id] = parts;
  if (!CLIENT_ID_PATTERN.test(clientId) || !UUID.test(id)) return null;
  // One text per position: a cursor padded or re-encoded differently is not accepted.
  return encodeCursor({ clientId, id }) === text ? { clientId, id } : null;
}

/** `cursor`: a `nextCursor` this API returned, and never together with a non-zero `offset`. */
function IsListCursor(): PropertyDecorator {
  return ValidateBy({
    name: 'isListCursor',
    validator: {
      validate: (value: unknown, args?: ValidationArguments) =>
        decodeCursor(value) !== null && !((args?.object as ListQueryDto | undefined)?.offset ?? 0),
      defaultMessage: (args?: ValidationArguments) =>
        decodeCursor(args?.value) === null
          ? 'cursor must be the nextCursor of a previous page of this list'
          : 'cursor and offset cannot be combined: a page by cursor starts right after the cursor',
    },
  });
}

export class CursorListQueryDto extends ListQueryDto {
  @ApiPropertyOptional({
    description:
      'Continue after a previous page: its `nextCursor`. Pages by cursor neither skip nor repeat a ' +
      'device when devices are added or removed meanwhile, and cost the same at any depth. Not ' +
      'with `offset`.',
    maxLength: MAX_CURSOR_LENGTH,
  })
  @IsOptional()
  @IsListCursor()
  cursor?: string;
}

export abstract class CursorListResultDto extends ListResultDto {
  @ApiPropertyOptional({
    description: 'Present when more items follow (`limitExceeded`): pass it as `cursor` to get the next page',
  })
  nextCursor?: string;
}

/** The decoded `cursor` of a validated query (the DTO's validator has accepted it). */
export function queryCursor(query: { cursor?: string }): ListCursor | null {
  return query.cursor === undefined ? null : decodeCursor(query.cursor);
}
