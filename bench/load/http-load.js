'use strict';
// HTTP load generator, run as a separate process: autocannon (no pipelining) with a fixed number of
// connections, each request on the next path of a list (so the load spreads over many devices).
// A warm-up run is discarded, then the measured run is bounded by duration and request count.
// Latencies come from autocannon's per-response timings, recorded in µs in our own HDR histogram
// (autocannon's own histogram has 1 ms resolution).
const autocannon = require('autocannon');
const { runJob } = require('./child-guard');
const { histogram, summarize } = require('../lib/stats');

/**
 * job: { url, method, paths[], headers, body?, connections, warmupMs, durationMs, maxRequests,
 *        timeoutSec, hardLimitMs }
 */
function once(job, durationMs, maxRequests, record) {
  return new Promise((resolve, reject) => {
    let next = 0;
    const paths = job.paths;
    const instance = autocannon(
      {
        url: job.url,
        connections: job.connections,
        pipelining: 1,
        duration: Math.max(durationMs / 1000, 0.1),
        maxOverallRequests: maxRequests,
        timeout: job.timeoutSec ?? 10,
        headers: job.headers ?? {},
        requests: [
          {
            method: job.method ?? 'GET',
            body: job.body,
            setupRequest: (req) => {
              req.path = paths[next++ % paths.length];
              return req;
            },
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (statusCode >= 200 && statusCode < 300) record(responseTimeMs);
    });
  });
}

async function run(job) {
  if (job.warmupMs > 0) await once(job, job.warmupMs, job.maxRequests, () => undefined);
  const h = histogram();
  const started = process.hrtime.bigint();
  const result = await once(job, job.durationMs, job.maxRequests, (t) => h.recordValue(Math.round(t * 1000)));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const ok = result['2xx'];
  const statusCodes = {};
  for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = v.count;
  return {
    connections: job.connections,
    elapsedMs: Math.round(elapsedMs),
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    rps: Math.round((ok / elapsedMs) * 1000),
    latency: summarize(h),
  };
}

runJob(run);
