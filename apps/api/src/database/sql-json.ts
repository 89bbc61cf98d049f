/**
 * SQL fragments that write a column as JSON text exactly as `JSON.stringify` writes the value the
 * API would otherwise build in JavaScript, for statements that return a response body as it is
 * (the fleet-status page, the device list).
 */

/** A timestamptz as JSON, exactly as `JSON.stringify(date)` writes it (UTC, milliseconds, `Z`). */
export const jsonTime = (col: string): string =>
  `coalesce('"' || to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"', 'null')`;
