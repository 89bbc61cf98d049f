'use strict';
// Fleet status: GET /v1/_/vpn/status?limit=500&offset=… over every page of the bench account's
// devices (10,000 in full mode), 10 connections. Two rows: full pages (200), and the conditional
// read of an unchanged fleet (If-None-Match with each page's ETag → 304). The harness creates
// devices without VPN statuses, so every device gets one first, in SQL (a mix of connected, idle
// and error reports; the statuses are not events, the fleet stays unchanged while measured).
// Ceilings, from the bare node:http + pg server: the API's page statement alone, its JSON text sent
// as it is, the same bytes as ours (200), and the API's ETag probe statement answering 304 (304).
const { startCeilingServer, httpLoad } = require('../lib/stack');
const { alternate, checkHttp, ratio, latencyPair } = require('../lib/measure');

const PAGE = 500;
const CONNECTIONS = 10;

/** Gives every device of the bench account a VPN status (kept when one exists already). */
async function seedStatuses(ctx) {
  const { rowCount } = await ctx.sql(
    `INSERT INTO device_vpn_status (device_id, scope_id, connected, ip_address, status, status_code, boot_id, seq, reported_on)
     SELECT d.id, d.scope_id, x.connected, x.ip, x.status, x.code, 'bench-seed', 1, now() - random() * interval '1 hour'
       FROM (SELECT id, scope_id, row_number() OVER (ORDER BY client_id) AS n FROM device WHERE scope_id = $1) d
       CROSS JOIN LATERAL (
         SELECT CASE d.n % 4 WHEN 0 THEN true ELSE false END AS connected,
                CASE d.n % 4 WHEN 0 THEN '10.100.' || (d.n / 250) % 250 || '.' || d.n % 250 ELSE '0.0.0.0' END AS ip,
                CASE d.n % 4 WHEN 0 THEN 'connected' WHEN 1 THEN 'idle' WHEN 2 THEN 'connecting' ELSE 'error' END AS status,
                CASE d.n % 4 WHEN 0 THEN '004' WHEN 1 THEN '003' WHEN 2 THEN '001' ELSE '720' END AS code) x
     ON CONFLICT (device_id) DO NOTHING`,
    [ctx.account.id],
  );
  return rowCount;
}

/** The ETag of every page, as one server answers it (one GET each). */
async function etags(baseUrl, paths, headers) {
  const out = [];
  for (const p of paths) {
    const res = await fetch(baseUrl + p, { headers, signal: AbortSignal.timeout(30_000) });
    await res.arrayBuffer();
    const etag = res.headers.get('etag');
    if (res.status !== 200 || !etag) throw new Error(`GET ${baseUrl}${p} → ${res.status}, ETag ${etag}`);
    out.push({ 'if-none-match': etag });
  }
  return out;
}

module.exports = {
  id: 'fleet-status',
  title: 'Fleet status',
  timeoutMs: (ctx) => ctx.opts.rounds * 4 * (ctx.opts.warmupMs + ctx.opts.durationMs + 20_000) + 60_000,
  async run(ctx) {
    const seeded = await seedStatuses(ctx);
    // What autovacuum does on a normal server (the shared test server runs with autovacuum off):
    // without statistics the planner sorted all 10,000 devices for every page instead of walking
    // the (scope_id, client_id) index (the last page: 22 ms instead of 7 ms in EXPLAIN ANALYZE), and
    // without the visibility map no index-only probe. Ours and the ceiling run on the same tables.
    await ctx.sql('VACUUM ANALYZE device, device_vpn_status, device_event, gateway_peer, account');
    const pages = Math.max(1, Math.ceil(ctx.devices.length / PAGE));
    const paths = Array.from(
      { length: pages },
      (_v, i) => `/v1/_/vpn/status?limit=${PAGE}&offset=${i * PAGE}`,
    );
    const auth = { authorization: `Bearer ${ctx.token}` };
    const base = {
      method: 'GET',
      paths,
      headers: auth,
      connections: CONNECTIONS,
      warmupMs: ctx.opts.warmupMs,
      durationMs: ctx.opts.durationMs,
      maxRequests: ctx.opts.maxRequests,
      timeoutSec: 30,
    };
    const ceilingServer = await startCeilingServer(ctx);
    let full;
    let cond;
    let sizes;
    try {
      full = await alternate(
        ctx.opts.rounds,
        () => httpLoad(ctx, 'load-fleet-status-ceiling', { ...base, url: ceilingServer.url }),
        () => httpLoad(ctx, 'load-fleet-status-ours', { ...base, url: ctx.api.url }),
      );
      // Each server's own ETags of the unchanged fleet; the ceiling's come from the same probe.
      const oursTags = await etags(ctx.api.url, paths, auth);
      const ceilingTags = await etags(
        ceilingServer.url,
        paths.map((p) => `${p}&etag=1`),
        {},
      );
      const first = await fetch(ctx.api.url + paths[0], { headers: auth });
      const body = await first.text();
      sizes = { pageBytes: Buffer.byteLength(body) };
      // The ceiling runs the API's page statement: the same bytes, or the ratio compares apples and pears.
      const ceilingBody = await (await fetch(ceilingServer.url + paths[0])).text();
      if (ceilingBody !== body) throw new Error("the ceiling's first page differs from ours");
      if (JSON.parse(body).items.length < Math.min(PAGE, ctx.devices.length))
        throw new Error(`first page of ours: not ${PAGE} items`);
      const conditional = { ...base, okStatus: [304] };
      cond = await alternate(
        ctx.opts.rounds,
        () =>
          httpLoad(ctx, 'load-fleet-304-ceiling', {
            ...conditional,
            url: ceilingServer.url,
            pathHeaders: ceilingTags,
          }),
        () =>
          httpLoad(ctx, 'load-fleet-304-ours', { ...conditional, url: ctx.api.url, pathHeaders: oursTags }),
      );
    } finally {
      await ceilingServer.stop();
    }
    const errorRate = checkHttp('fleet status (ours)', full.ours);
    checkHttp('fleet status (ceiling)', full.ceiling);
    const condErrorRate = checkHttp('fleet status 304 (ours)', cond.ours);
    checkHttp('fleet status 304 (ceiling)', cond.ceiling);
    const p99 = full.ours.latency.p99Ms;
    const condP99 = cond.ours.latency.p99Ms;
    return {
      rows: [
        {
          scenario: `Fleet status (GET /vpn/status, pages of ${PAGE} over ${ctx.devices.length} devices, ${CONNECTIONS} conns)`,
          unit: 'pages/s',
          ours: full.ours.rps,
          ceiling: full.ceiling.rps,
          ratio: ratio(full.ours.rps, full.ceiling.rps),
          oursLatency: latencyPair(full.ours.latency),
          ceilingLatency: latencyPair(full.ceiling.latency),
          target: 'p99 ≤ 20 ms',
          met: p99 <= 20 && errorRate <= 0.01,
          errorRate,
          note:
            `ceiling: the page statement alone (ours also runs the ETag probe first); ` +
            `${sizes.pageBytes} bytes per page of ours`,
        },
        {
          scenario: `Fleet status, unchanged (If-None-Match → 304, ${pages} pages, ${CONNECTIONS} conns)`,
          unit: 'answers/s',
          ours: cond.ours.rps,
          ceiling: cond.ceiling.rps,
          ratio: ratio(cond.ours.rps, cond.ceiling.rps),
          oursLatency: latencyPair(cond.ours.latency),
          ceilingLatency: latencyPair(cond.ceiling.latency),
          target: 'p99 ≤ 5 ms',
          met: condP99 <= 5 && condErrorRate <= 0.01,
          errorRate: condErrorRate,
          note: 'ceiling: the same ETag probe statement, then 304',
        },
      ],
      details: {
        pages,
        pageSize: PAGE,
        devices: ctx.devices.length,
        seededStatuses: seeded,
        ...sizes,
        full,
        cond,
      },
    };
  },
};
