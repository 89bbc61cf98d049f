'use strict';
// Fleet listing: GET /v1/_/devices?limit=500&offset=… over every page of the bench account's
// devices (10,000 in full mode), 10 connections; p99 is the figure. Ceiling: the same page query
// from the bare node:http + pg server, its rows sent with JSON.stringify (ours: the page statement
// writes the body, see DevicesRepository.listPageJson).
// Then the same pages by cursor (…&cursor=<the previous page's nextCursor>) against the same pages
// by offset, alternating, in the same run: what keyset paging saves over the offset walk.
const { startCeilingServer, httpLoad } = require('../lib/stack');
const { alternate, checkHttp, ratio, latencyPair } = require('../lib/measure');
const { Api } = require('../lib/api');

const PAGE = 500;
const CONNECTIONS = 10;

module.exports = {
  id: 'fleet-list',
  title: 'Fleet listing',
  timeoutMs: (ctx) => ctx.opts.rounds * 4 * (ctx.opts.warmupMs + ctx.opts.durationMs + 20_000) + 60_000,
  async run(ctx) {
    // What autovacuum does on a normal server (the shared test server runs with autovacuum off):
    // statistics for the planner and the visibility map, for ours and the ceiling alike.
    await ctx.sql('VACUUM ANALYZE device, device_vpn_status, gateway_peer, account, access_token, app_user');
    const pages = Math.max(1, Math.ceil(ctx.devices.length / PAGE));
    const paths = Array.from({ length: pages }, (_v, i) => `/v1/_/devices?limit=${PAGE}&offset=${i * PAGE}`);
    const base = {
      method: 'GET',
      paths,
      headers: { authorization: `Bearer ${ctx.token}` },
      connections: CONNECTIONS,
      warmupMs: ctx.opts.warmupMs,
      durationMs: ctx.opts.durationMs,
      maxRequests: ctx.opts.maxRequests,
      timeoutSec: 30,
    };
    const ceilingServer = await startCeilingServer(ctx);
    let m;
    try {
      m = await alternate(
        ctx.opts.rounds,
        () => httpLoad(ctx, 'load-list-ceiling', { ...base, url: ceilingServer.url }),
        () => httpLoad(ctx, 'load-list-ours', { ...base, url: ctx.api.url }),
      );
    } finally {
      await ceilingServer.stop();
    }
    const errorRate = checkHttp('fleet listing (ours)', m.ours);
    checkHttp('fleet listing (ceiling)', m.ceiling);

    // The cursor of every page, walked once.
    const api = new Api(ctx.api.url, ctx.token);
    const cursorPaths = [`/v1/_/devices?limit=${PAGE}`];
    for (let i = 1; i < pages; i++) {
      const body = await api.call('GET', cursorPaths[i - 1]);
      if (!body.nextCursor) throw new Error(`page ${i} of ${pages} has no nextCursor`);
      cursorPaths.push(`/v1/_/devices?limit=${PAGE}&cursor=${body.nextCursor}`);
    }
    const c = await alternate(
      ctx.opts.rounds,
      () => httpLoad(ctx, 'load-list-offset', { ...base, url: ctx.api.url }),
      () => httpLoad(ctx, 'load-list-cursor', { ...base, paths: cursorPaths, url: ctx.api.url }),
    );
    const cursorErrors = checkHttp('fleet listing by cursor', c.ours);
    checkHttp('fleet listing by offset', c.ceiling);
    return {
      rows: [
        {
          scenario: `Fleet listing (pages of ${PAGE} over ${ctx.devices.length} devices, ${CONNECTIONS} conns)`,
          unit: 'pages/s',
          ours: m.ours.rps,
          ceiling: m.ceiling.rps,
          ratio: ratio(m.ours.rps, m.ceiling.rps),
          oursLatency: latencyPair(m.ours.latency),
          ceilingLatency: latencyPair(m.ceiling.latency),
          target: 'p99 ≤ 50 ms',
          met: m.ours.latency.p99Ms <= 50 && errorRate <= 0.01,
          errorRate,
        },
        {
          scenario: `Fleet listing by cursor (the same ${pages} pages, ${CONNECTIONS} conns; baseline: ours by offset)`,
          unit: 'pages/s',
          ours: c.ours.rps,
          ceiling: c.ceiling.rps,
          ratio: ratio(c.ours.rps, c.ceiling.rps),
          oursLatency: latencyPair(c.ours.latency),
          ceilingLatency: latencyPair(c.ceiling.latency),
          target: 'reported (no target set)',
          met: null,
          errorRate: cursorErrors,
          note: 'ceiling column: our own API paging the same pages by offset, alternating with the cursor runs',
        },
      ],
      details: { pages, pageSize: PAGE, devices: ctx.devices.length, ...m, cursor: c },
    };
  },
};
