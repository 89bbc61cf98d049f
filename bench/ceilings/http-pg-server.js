'use strict';
// The HTTP ceiling: a bare node:http server doing the same primary-key query as the API, with `pg`
// on the same database and the same pool size, and the same JSON bodies. No framework, no auth, no
// validation: what a request costs when only the database and the JSON remain.
// Env: PORT, DATABASE_URL, SCOPE_ID, POOL_SIZE.
const http = require('node:http');
const { Pool } = require('pg');

const scopeId = process.env.SCOPE_ID;
const pool = new Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_SIZE ?? 20),
});

const STATUS_SQL = `SELECT d.connection_status, s.connected, s.ip_address, s.status, s.status_code, s.reported_on
  FROM device d LEFT JOIN device_vpn_status s ON s.device_id = d.id
 WHERE d.id = $1 AND d.scope_id = $2`;

const LIST_SQL = `SELECT id, scope_id, client_id, display_name, status, connection_status, last_event_on, model_id,
       serial_number, firmware_version, connection_ip, application_ids, tunnel_ip, vpn_public_key,
       mqtt_username, credentials_issued_on, created_on, created_by, modified_on, modified_by, optlock
  FROM device WHERE scope_id = $1 ORDER BY client_id ASC OFFSET $2 LIMIT $3`;

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
  send(res, 200, { items, size: items.length, limitExceeded });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const m = STATUS_PATH.exec(url.pathname);
  const work = m ? status(m[1], res) : url.pathname === '/v1/_/devices' ? list(url.searchParams, res) : null;
  if (!work) return send(res, 404, { result: 'NOT_FOUND', error: 'No route', details: url.pathname });
  work.catch((err) =>
    send(res, 500, { result: 'INTERNAL_ERROR', error: 'Query failed', details: err.message }),
  );
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`ceiling listening on ${server.address().port}`);
});
const stop = () => server.close(() => pool.end().finally(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
