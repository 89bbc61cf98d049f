/**
 * SQL fragments that write a column as JSON text exactly as `JSON.stringify` writes the value the
 * API would otherwise build in JavaScript, for statements that return a response body as it is
 * (the fleet-status page, the device list).
 */

/**
 * A timestamptz as the text `JSON.stringify(date)` writes inside its quotes (UTC, milliseconds,
 * `Z`); null stays null. For a `row_to_json` column, which adds the quotes itself.
 */
export const isoTime = (col: string): string =>
  `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** A timestamptz as JSON, exactly as `JSON.stringify(date)` writes it (`null` for null). */
export const jsonTime = (col: string): string => `coalesce('"' || ${isoTime(col)} || '"', 'null')`;

/**
 * The `nextCursor` text of the device with this client id and id, as encodeCursor writes it
 * (common/list-cursor.ts): base64url of `<clientId>\n<deviceId>`, without padding. `encode`
 * writes base64 with a line break every 76 characters; `translate` maps `+/` to `-_` and drops the
 * padding and the line breaks.
 */
export const cursorText = (clientIdCol: string, idCol: string): string =>
  `translate(encode(convert_to(${clientIdCol} || chr(10) || ${idCol}, 'UTF8'), 'base64'), E'+/=\\n', '-_')`;

/**
 * The list body's `,"nextCursor":"…"` part, or '' when no more rows follow: an aggregate over
 * `rows` (a page of at most `limit` + 1 rows with `client_id`, `id` and their place `n` in the
 * order), naming the page's last device (`n` = `limit`).
 */
export const nextCursorJson = (rows: string, limit: string): string => {
  const last = (col: string) => `max(${col}) FILTER (WHERE ${rows}.n = ${limit})`;
  return `CASE WHEN count(*) > ${limit}
    THEN ',"nextCursor":"' || ${cursorText(last(`${rows}.client_id`), last(`${rows}.id::text`))} || '"' ELSE '' END`;
};
