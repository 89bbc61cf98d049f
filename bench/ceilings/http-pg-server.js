'use strict';
// The HTTP ceiling: a bare node:http server doing the same primary-key query as the API, with `pg`
// on the same database and the same pool size, and the same JSON bodies. No framework, no auth, no
// validation: what a request costs when only the database and the JSON remain.
// Also the fleet status page (the API's page statement alone, and the API's ETag probe answering
// 304) and a Server-Sent Events tail of device_event (the simplest gap-free poll, see sseTail).
// Env: PORT, DATABASE_URL, SCOPE_ID, POOL_SIZE, SSE_POLL_MS (300, the API's SSE_POLL_INTERVAL_MS),
// FRESH_SECONDS (the API's VPN_HANDSHAKE_FRESH_SECONDS).
const http = require('node:http');
const { createHash } = require('node:crypto');
const { Pool } = require('pg');

const scopeId = process.env.SCOPE_ID;
const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_SIZE ?? 20),
});

const STATUS_SQL = `SELECT d.connection_status, s.connected, s.ip_address, s.status, s.status_code, s.reported_on
  FROM device d LEFT JOIN device_vpn_status s ON s.device_id = d.id
 WHERE d.id = $1 AND d.scope_id = $2`;

// The page is picked from the (scope_id, client_id) index first, as the API's page statement does
// (DevicesRepository.listPageJson): the rows skipped by the offset are never read.
const LIST_SQL = `SELECT d.id, d.scope_id, d.client_id, d.display_name, d.status, d.connection_status, d.last_event_on,
       d.model_id, d.serial_number, d.firmware_version, d.connection_ip, d.application_ids, d.tunnel_ip,
       d.vpn_public_key, d.mqtt_username, d.credentials_issued_on, d.created_on, d.created_by, d.modified_on,
       d.modified_by, d.optlock
  FROM (SELECT client_id FROM device WHERE scope_id = $1 ORDER BY client_id ASC OFFSET $2 LIMIT $3) pick
  CROSS JOIN LATERAL (SELECT * FROM device d WHERE d.scope_id = $1 AND d.client_id = pick.client_id OFFSET 0) d
 ORDER BY d.client_id ASC`;

// The API's unfiltered page statement (apps/api/src/fleet/fleet-status.repository.ts, devicePage,
// one account): the page is picked from the device index first, then only its devices are joined;
// the derived view is computed in SQL, and the statement writes the list body's JSON text itself
// (pageBody), which is sent as it is.
const FLEET_PAGE_SQL = `SELECT '{"items":[' || coalesce(string_agg('{"deviceId":"' || r.id || '","clientId":' || to_json(r.client_id)::text
  || ',"displayName":' || to_json(r.display_name)::text || ',"scopeId":"' || r.scope_id
  || '","connected":' || r.connected || ',"ipAddress":' || to_json(r.ip_address)::text
  || ',"status":' || to_json(r.status)::text || ',"statusCode":' || to_json(r.status_code)::text
  || ',"deviceConnection":' || to_json(r.connection_status)::text
  || ',"reportedOn":' || coalesce('"' || to_char(r.reported_on AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"', 'null')
  || ',"tunnel":' || CASE WHEN r.gateway_id IS NULL THEN 'null' ELSE
       '{"gatewayId":"' || r.gateway_id || '","gatewayAddress":"' || host(network(r.vpn_subnet) + 1)
       || '","lastHandshakeOn":' || coalesce('"' || to_char(r.last_handshake_on AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"', 'null')
       || ',"rxBytes":' || r.rx_bytes || ',"txBytes":' || r.tx_bytes || '}' END
  || '}', ',' ORDER BY r.client_id, r.id) FILTER (WHERE r.n <= $4), '')
  || '],"size":' || count(*) FILTER (WHERE r.n <= $4)
  || ',"limitExceeded":' || (count(*) > $4)
  || CASE WHEN count(*) > $4 THEN ',"nextCursor":"' || translate(encode(convert_to(
       max(r.client_id) FILTER (WHERE r.n = $4) || chr(10) || max(r.id::text) FILTER (WHERE r.n = $4),
       'UTF8'), 'base64'), E'+/=\n', '-_') || '"' ELSE '' END || '}' AS body
  FROM (SELECT x.*, row_number() OVER (ORDER BY x.client_id, x.id) AS n FROM (
    WITH pg AS MATERIALIZED (
      SELECT d.* FROM device d WHERE d.scope_id = $2 ORDER BY d.client_id, d.id OFFSET $3 LIMIT $4 + 1)
    SELECT d.id, d.client_id, d.display_name, d.scope_id, d.connection_status,
           v.connected, CASE WHEN v.connected THEN s.ip_address ELSE '0.0.0.0' END AS ip_address,
           v.status, v.status_code, s.reported_on,
           p.gateway_id, a.vpn_subnet, p.last_handshake_on, p.rx_bytes, p.tx_bytes
      FROM pg d
      JOIN account a ON a.id = d.scope_id
      LEFT JOIN device_vpn_status s ON s.device_id = d.id
      LEFT JOIN gateway_peer p ON p.device_id = d.id AND NOT p.removed
      CROSS JOIN LATERAL (
        SELECT CASE
                 WHEN s.device_id IS NULL OR NOT s.connected THEN NULL
                 WHEN NOT (d.connection_status = 'CONNECTED'
                           OR (p.gateway_id IS NOT NULL AND p.last_handshake_on > now() - make_interval(secs => $1)))
                   THEN '220'
                 WHEN d.vpn_public_key IS NOT NULL AND p.gateway_id IS NULL THEN '750'
               END AS problem) pr
      CROSS JOIN LATERAL (
        SELECT (s.device_id IS NOT NULL AND s.connected AND pr.problem IS NULL) AS connected,
               CASE WHEN s.device_id IS NULL THEN 'idle' WHEN pr.problem IS NOT NULL THEN 'error' ELSE s.status END AS status,
               CASE WHEN s.device_id IS NULL THEN '000' ELSE COALESCE(pr.problem, s.status_code) END AS status_code) v) x) r`;

// The API's ETag probe (FleetStatusRepository.version), one account: index probes for the device
// parts (the newest event, modification and removal), the scope's device peers for the rest.
const FLEET_VERSION_SQL = `SELECT max(ev.max_id)::text AS max_event_id,
       to_char(max(dv.max_modified_on) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS max_modified_on,
       max(rm.max_id)::text AS max_removal_id,
       coalesce(sum(gp.n), 0)::text AS peers,
       sum(gp.serials)::text AS peer_serials,
       to_char(max(gp.max_handshake_on) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS max_handshake_on,
       coalesce(sum(gp.fresh), 0)::text AS fresh_peers
  FROM account a
  LEFT JOIN LATERAL (SELECT max(e.id) AS max_id FROM device_event e WHERE e.scope_id = a.id) ev ON true
  LEFT JOIN LATERAL (SELECT max(d.modified_on) AS max_modified_on FROM device d WHERE d.scope_id = a.id) dv ON true
  LEFT JOIN LATERAL (SELECT max(r.id) AS max_id FROM device_removal r WHERE r.scope_id = a.id) rm ON true
  LEFT JOIN LATERAL (
    SELECT count(*) AS n, sum(g.serial) AS serials, max(g.last_handshake_on) AS max_handshake_on,
           count(*) FILTER (WHERE NOT g.removed AND g.last_handshake_on > now() - make_interval(secs => $1)) AS fresh
      FROM gateway_peer g WHERE g.scope_id = a.id AND g.kind = 'device') gp ON true
 WHERE a.id = $2`;

const freshSeconds = Number(process.env.FRESH_SECONDS ?? 180);

const STATUS_PATH = /^\/v1\/_\/devices\/([0-9a-f-]{36})\/vpn$/;

function send(res, code, body) {
  const json = JSON.stringify(body);
  res.writeHead(code, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}

async function status(id, res) {
  const { rows } = await pool.query(STATUS_SQL, [id, scopeId]);
  const r = rows[0];
  if (!r) return send(res, 404, { result: 'NOT_FOUND', error: 'Device not found', details: id });
  send(
    res,
    200,
    r.reported_on
      ? {
          connected: r.connected,
          ipAddress: r.connected ? r.ip_address : '0.0.0.0',
          status: r.status,
          statusCode: r.status_code,
          deviceConnection: r.connection_status,
          reportedOn: r.reported_on,
        }
      : {
          connected: false,
          ipAddress: '0.0.0.0',
          status: 'idle',
          statusCode: '000',
          deviceConnection: r.connection_status,
          reportedOn: null,
        },
  );
}

async function list(query, res) {
  const offset = Number(query.get('offset') ?? 0);
  const limit = Math.min(Number(query.get('limit') ?? 50), 500);
  const { rows } = await pool.query(LIST_SQL, [scopeId, offset, limit + 1]);
  const limitExceeded = rows.length > limit;
  const items = (limitExceeded ? rows.slice(0, limit) : rows).map((d) => ({
    id: d.id,
    scopeId: d.scope_id,
    clientId: d.client_id,
    displayName: d.display_name,
    status: d.status,
    connectionStatus: d.connection_status,
    lastEventOn: d.last_event_on,
    modelId: d.model_id,
    serialNumber: d.serial_number,
    firmwareVersion: d.firmware_version,
    connectionIp: d.connection_ip,
    applicationIds: d.application_ids ? d.application_ids.split(',').filter(Boolean) : [],
    tunnelAddress: d.tunnel_ip,
    vpnPublicKey: d.vpn_public_key,
    mqttUsername: d.mqtt_username,
    credentialsIssuedOn: d.credentials_issued_on,
    createdOn: d.created_on,
    createdBy: d.created_by,
    modifiedOn: d.modified_on,
    modifiedBy: d.modified_by,
    optlock: d.optlock,
  }));
  const last = items[items.length - 1];
  // The API's nextCursor (apps/api/src/common/list-cursor.ts): base64url of `<clientId>\n<id>`.
  const nextCursor = limitExceeded
    ? Buffer.from(`${last.clientId}\n${last.id}`, 'utf8').toString('base64url')
    : undefined;
  send(res, 200, { items, size: items.length, limitExceeded, nextCursor });
}

async function fleetEtag(offset, limit) {
  const { rows } = await pool.query(FLEET_VERSION_SQL, [freshSeconds, scopeId]);
  const digest = createHash('sha256')
    .update(JSON.stringify({ query: { scope: scopeId, offset, limit }, version: rows[0] }))
    .digest('base64url')
    .slice(0, 27);
  return `W/"${digest}"`;
}

/**
 * GET /v1/_/vpn/status: without If-None-Match, the page statement alone (no ETag probe; the
 * answer carries the ETag of the probe only when asked with `?etag=1`, to collect them); with
 * If-None-Match, the probe and 304 (or the page when it does not match). The page's body is the
 * statement's JSON text, as the API sends it.
 */
async function fleetStatus(req, query, res) {
  const offset = Number(query.get('offset') ?? 0);
  const limit = Math.min(Number(query.get('limit') ?? 50), 500);
  const inm = req.headers['if-none-match'];
  let etag = null;
  if (inm || query.get('etag') === '1') {
    etag = await fleetEtag(offset, limit);
    if (inm === etag) {
      res.writeHead(304, { etag });
      return res.end();
    }
  }
  const { rows } = await pool.query(FLEET_PAGE_SQL, [freshSeconds, scopeId, offset, limit]);
  const json = rows[0].body;
  const headers = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(json),
  };
  if (etag) headers.etag = etag;
  res.writeHead(200, headers);
  res.end(json);
}

/**
 * The SSE ceiling: one poller for every stream (every SSE_POLL_MS while one is open), reading the
 * account's public device_event rows in id order up to a gap-free watermark: the largest visible
 * id of a statement snapshot becomes safe once none of the transactions that snapshot saw running
 * still runs (the API's device_event trigger makes every writer take its xid before its event id;
 * the same rule as the API's EventFeedRepository, in its simplest form). Streams start after
 * their Last-Event-ID (or now); frames are the API's (id, event, data with the same JSON shape).
 */
const SSE_EVENTS_SQL = `SELECT e.id::text AS id, e.type, e.scope_id, e.device_id, d.client_id, e.received_on, e.details
  FROM device_event e JOIN device d ON d.id = e.device_id
 WHERE e.scope_id = $1 AND e.id > $2 AND e.id <= $3 AND e.type IN ('VPN_STATUS', 'BIRTH', 'DC', 'LWT')
 ORDER BY e.id LIMIT 1000`;
const CONNECTION_OF = { BIRTH: 'CONNECTED', DC: 'DISCONNECTED', LWT: 'MISSING' };
const sse = { clients: new Set(), position: null, safe: null, pending: [], timer: null };
const pollMs = Number(process.env.SSE_POLL_MS ?? 300);

function publicEvent(r) {
  let type;
  let data;
  if (r.type === 'VPN_STATUS') {
    const x = r.details;
    type =
      x.status === 'error' || x.statusCode >= '010'
        ? 'vpn.error'
        : x.connected
          ? 'vpn.connected'
          : 'vpn.disconnected';
    data = {
      connected: x.connected === true,
      ipAddress: x.ipAddress,
      status: x.status,
      statusCode: x.statusCode,
    };
  } else {
    type = 'device.connection';
    data = { deviceConnection: CONNECTION_OF[r.type], cause: r.type };
  }
  const event = {
    id: r.id,
    type,
    scopeId: r.scope_id,
    deviceId: r.device_id,
    clientId: r.client_id,
    occurredOn: r.received_on.toISOString(),
    data,
  };
  return `id: ${r.id}\nevent: ${type}\ndata: ${JSON.stringify(event)}\n\n`;
}

async function sseWatermark() {
  const { rows } = await pool.query(
    `SELECT COALESCE((SELECT max(id) FROM device_event), 0)::text AS max_id, pg_current_snapshot()::text AS snap`,
  );
  const maxId = BigInt(rows[0].max_id);
  const xip = rows[0].snap.split(':')[2];
  const running = new Set(xip ? xip.split(',') : []);
  const advance = (id) => {
    if (sse.safe === null || id > sse.safe) sse.safe = id;
  };
  sse.pending = sse.pending.filter((c) => {
    for (const x of c.running) if (running.has(x)) return true;
    advance(c.maxId);
    return false;
  });
  if (running.size === 0) advance(maxId);
  else sse.pending.push({ maxId, running });
  return sse.safe;
}

async function ssePoll() {
  sse.timer = null;
  if (sse.clients.size === 0 || sse.position === null) return;
  let full = false;
  try {
    const safe = await sseWatermark();
    if (safe !== null && safe > sse.position) {
      const { rows } = await pool.query(SSE_EVENTS_SQL, [scopeId, sse.position.toString(), safe.toString()]);
      for (const r of rows) {
        const id = BigInt(r.id);
        const frame = publicEvent(r);
        for (const c of sse.clients) {
          if (id <= c.position) continue;
          c.res.write(frame);
          c.position = id;
        }
      }
      full = rows.length === 1000;
      sse.position = full ? BigInt(rows[rows.length - 1].id) : safe;
    }
  } catch (err) {
    console.error(`sse poll failed: ${err.message}`);
  }
  if (sse.clients.size > 0) sse.timer = setTimeout(() => void ssePoll(), full ? 0 : pollMs);
}

async function sseOpen(req, res) {
  const last = req.headers['last-event-id'];
  const start = last !== undefined ? BigInt(last) : ((await sseWatermark()) ?? 0n);
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
  });
  res.socket.setNoDelay(true);
  res.write('retry: 2000\n: stream open\n\n');
  const client = { res, position: start };
  // A stream that starts behind the shared position rewinds it; the others skip what they had.
  if (sse.position === null || start < sse.position) sse.position = start;
  sse.clients.add(client);
  res.on('close', () => {
    sse.clients.delete(client);
    // Nobody listens: the next stream starts the poll afresh.
    if (sse.clients.size === 0) sse.position = null;
  });
  sse.timer ??= setTimeout(() => void ssePoll(), pollMs);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const m = STATUS_PATH.exec(url.pathname);
  const work = m
    ? status(m[1], res)
    : url.pathname === '/v1/_/devices'
      ? list(url.searchParams, res)
      : url.pathname === '/v1/_/vpn/status'
        ? fleetStatus(req, url.searchParams, res)
        : url.pathname === '/v1/_/vpn/events'
          ? sseOpen(req, res)
          : null;
  if (!work) return send(res, 404, { result: 'NOT_FOUND', error: 'No route', details: url.pathname });
  work.catch((err) =>
    send(res, 500, { result: 'INTERNAL_ERROR', error: 'Query failed', details: err.message }),
  );
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`ceiling listening on ${server.address().port}`);
});
const stop = () => {
  for (const c of sse.clients) c.res.destroy();
  clearTimeout(sse.timer);
  server.close(() => pool.end().finally(() => process.exit(0)));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
