import { validate } from 'class-validator';
import { plainToInstance } from 'class-transformer';
import { CursorListQueryDto, decodeCursor, encodeCursor } from './list-cursor';

const id = '0b5e9f8e-3c1a-4d2b-9f00-1234567890ab';

describe('list cursor', () => {
  it('should decode what it encodes, for the shortest and the longest client id', () => {
    for (const clientId of ['a', 'x'.repeat(64), 'gw-0042.site_A']) {
      const text = encodeCursor({ clientId, id });
      expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor(text)).toEqual({ clientId, id });
    }
  });

  it.each([
    ['not base64url', 'a+b/c='],
    ['no separator', Buffer.from(`gw-1${id}`).toString('base64url')],
    ['two separators', Buffer.from(`gw-1\n${id}\nx`).toString('base64url')],
    ['a client id the API never accepts', Buffer.from(`gw/1\n${id}`).toString('base64url')],
    ['an empty client id', Buffer.from(`\n${id}`).toString('base64url')],
    ['not a uuid', Buffer.from('gw-1\n1234').toString('base64url')],
    ['an upper-case uuid', Buffer.from(`gw-1\n${id.toUpperCase()}`).toString('base64url')],
    ['too long', 'A'.repeat(201)],
    ['empty', ''],
  ])('should refuse %s', (_what, text) => {
    expect(decodeCursor(text)).toBeNull();
  });

  it('should refuse a second spelling of the same position', () => {
    const text = encodeCursor({ clientId: 'gw-1', id });
    // Base64 with padding, or with spare bits set in its last character, decodes to the same bytes.
    const padded = Buffer.from(`gw-1\n${id}`).toString('base64');
    expect(Buffer.from(padded, 'base64url').toString()).toBe(`gw-1\n${id}`);
    expect(decodeCursor(padded.replace(/=+$/, '') + '==')).toBeNull();
    expect(decodeCursor(text + 'A')).toBeNull();
  });

  it('should accept a cursor in the query, refuse a foreign text and refuse it with an offset', async () => {
    const cursor = encodeCursor({ clientId: 'gw-1', id });
    const errors = async (query: Record<string, string>) =>
      (await validate(plainToInstance(CursorListQueryDto, query))).flatMap((e) =>
        Object.values(e.constraints ?? {}),
      );
    expect(await errors({ cursor })).toEqual([]);
    expect(await errors({ cursor, offset: '0' })).toEqual([]);
    expect(await errors({ cursor: 'garbage!' })).toEqual([
      'cursor must be the nextCursor of a previous page of this list',
    ]);
    expect(await errors({ cursor, offset: '10' })).toEqual([
      'cursor and offset cannot be combined: a page by cursor starts right after the cursor',
    ]);
  });
});
