'use strict';
// HTTP load generator, run as a separate process: autocannon (no pipelining) with a fixed number of
// connections, each request on the next path of a list (so the load spreads over many devices).
// A warm-up run is discarded, then the measured run is bounded by duration and request count.
// Latencies come from autocannon's per-response timings, recorded in µs in our own HDR histogram
// (autocannon's own histogram has 1 ms resolution). By default a 2xx answer is a success; a job may
// name its own success codes (okStatus, e.g. [304] for conditional reads), and give each path its
// own extra headers (pathHeaders[i] goes with paths[i], e.g. If-None-Match).
const autocannon = require('autocannon');
const { runJob } = require('./child-guard');
const { histogram, summarize } = require('../lib/stats');

/**
 * job: { url, method, paths[], pathHeaders[]?, headers, body?, okStatus[]?, connections, warmupMs,
 *        durationMs, maxRequests, timeoutSec, hardLimitMs }
 */
const isOk = (job) => {
  const codes = job.okStatus ? new Set(job.okStatus) : null;
  return codes ? (code) => codes.has(code) : (code) => code >= 200 && code < 300;
};

function once(job, durationMs, maxRequests, record) {
  return new Promise((resolve, reject) => {
    let next = 0;
    const paths = job.paths;
    const pathHeaders = job.pathHeaders;
    const ok = isOk(job);
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
              const i = next++ % paths.length;
              req.path = paths[i];
              if (pathHeaders) req.headers = { ...job.headers, ...pathHeaders[i] };
              return req;
            },
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      if (ok(statusCode)) record(responseTimeMs);
    });
  });
}

async function run(job) {
  if (job.warmupMs > 0) await once(job, job.warmupMs, job.maxRequests, () => undefined);
  const h = histogram();
  const started = process.hrtime.bigint();
  const result = await once(job, job.durationMs, job.maxRequests, (t) => h.recordValue(Math.round(t * 1000)));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  const statusCodes = {};
  for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = v.count;
  const okCode = isOk(job);
  // Without okStatus: exactly as before (autocannon's 2xx and non-2xx counts).
  const ok = job.okStatus
    ? Object.entries(statusCodes).reduce((n, [code, count]) => n + (okCode(Number(code)) ? count : 0), 0)
    : result['2xx'];
  const notOk = job.okStatus
    ? Object.entries(statusCodes).reduce((n, [code, count]) => n + (okCode(Number(code)) ? 0 : count), 0)
    : result.non2xx;
  return {
    connections: job.connections,
    elapsedMs: Math.round(elapsedMs),
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    okStatus: job.okStatus ?? '2xx',
    notOk,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    rps: Math.round((ok / elapsedMs) * 1000),
    latency: summarize(h),
  };
}

runJob(run);
