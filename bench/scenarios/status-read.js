'use strict';
// Status read: GET /v1/_/devices/{id}/vpn with a valid token, spread over every bench device,
// 50 connections. Ceiling: a bare node:http server doing the same primary-key query with pg.
const { startCeilingServer, httpLoad } = require('../lib/stack');
const { alternate, checkHttp, ratio, latencyPair } = require('../lib/measure');

module.exports = {
  id: 'status-read',
  title: 'Status read',
  timeoutMs: (ctx) => ctx.opts.rounds * 2 * (ctx.opts.warmupMs + ctx.opts.durationMs + 20_000) + 30_000,
  async run(ctx) {
    // What autovacuum does on a normal server (the shared test server runs with autovacuum off):
    // statistics for the planner and the visibility map, for ours and the ceiling alike.
    await ctx.sql('VACUUM ANALYZE device, device_vpn_status, gateway_peer, account, access_token, app_user');
    const paths = ctx.devices.map((d) => `/v1/_/devices/${d.id}/vpn`);
    const base = {
      method: 'GET',
      paths,
      headers: { authorization: `Bearer ${ctx.token}` },
      connections: 50,
      warmupMs: ctx.opts.warmupMs,
      durationMs: ctx.opts.durationMs,
      maxRequests: ctx.opts.maxRequests,
    };
    const ceilingServer = await startCeilingServer(ctx);
    let m;
    try {
      m = await alternate(
        ctx.opts.rounds,
        () => httpLoad(ctx, 'load-status-ceiling', { ...base, url: ceilingServer.url }),
        () => httpLoad(ctx, 'load-status-ours', { ...base, url: ctx.api.url }),
      );
    } finally {
      await ceilingServer.stop();
    }
    const errorRate = checkHttp('status read (ours)', m.ours);
    checkHttp('status read (ceiling)', m.ceiling);
    const r = ratio(m.ours.rps, m.ceiling.rps);
    const p99 = m.ours.latency.p99Ms;
    return {
      rows: [
        {
          scenario: 'Status read (GET …/vpn, 50 conns)',
          unit: 'req/s',
          ours: m.ours.rps,
          ceiling: m.ceiling.rps,
          ratio: r,
          oursLatency: latencyPair(m.ours.latency),
          ceilingLatency: latencyPair(m.ceiling.latency),
          target: '≥ 30 % of ceiling req/s and p99 ≤ 10 ms',
          met: r >= 0.3 && p99 <= 10 && errorRate <= 0.01,
          errorRate,
        },
      ],
      details: { devices: paths.length, ...m },
    };
  },
};
