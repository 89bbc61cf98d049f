'use strict';
// Helpers shared by the scenarios: ours-vs-ceiling rounds, validity checks, waiting on the database.

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the ceiling and ours alternately, `rounds` times each (ceiling first), and keeps the
 * best round of each (highest throughput): on a shared machine the best round is the one least
 * disturbed by others, for both sides alike. All rounds are kept in the details.
 */
async function alternate(rounds, runCeiling, runOurs, rate = (r) => r.rps) {
  const all = [];
  for (let i = 0; i < rounds; i++) {
    const ceiling = await runCeiling(i);
    const ours = await runOurs(i);
    all.push({ ceiling, ours });
  }
  const best = (key) => all.map((r) => r[key]).reduce((a, b) => (rate(b) > rate(a) ? b : a));
  return { ours: best('ours'), ceiling: best('ceiling'), rounds: all };
}

/**
 * A measurement that mostly failed means the harness (or the app) is broken, not slow: throw.
 * Some failures are reported in the row instead.
 */
function checkHttp(label, r) {
  // notOk: answers whose status is not the job's success codes (okStatus; 2xx unless set).
  const failed = (r.notOk ?? r.non2xx) + r.errors + r.timeouts;
  if (r.ok === 0 || failed > r.requests * 0.5) {
    throw new Error(
      `${label}: ${r.ok} of ${r.requests} requests succeeded (status codes ${JSON.stringify(r.statusCodes)}, ` +
        `${r.errors} errors, ${r.timeouts} timeouts)`,
    );
  }
  return failed / Math.max(r.requests, 1);
}

const ratio = (ours, ceiling) => (ceiling > 0 ? Math.round((ours / ceiling) * 1000) / 1000 : null);

/** Polls until `count` of these devices are CONNECTED in the database; returns the time it took. */
async function waitConnected(ctx, ids, timeoutMs) {
  const started = Date.now();
  let n = 0;
  while (Date.now() - started < timeoutMs) {
    const { rows } = await ctx.sql(
      `SELECT count(*)::int AS n FROM device WHERE id = ANY($1::uuid[]) AND connection_status = 'CONNECTED'`,
      [ids],
    );
    n = rows[0].n;
    if (n >= ids.length) return { connected: n, ms: Date.now() - started };
    await sleep(200);
  }
  return { connected: n, ms: Date.now() - started, timedOut: true };
}

function latencyPair(l) {
  return l && l.count ? { p50Ms: l.p50Ms, p99Ms: l.p99Ms } : null;
}

module.exports = { sleep, alternate, checkHttp, ratio, waitConnected, latencyPair };
