'use strict';
// Latency histograms: HDR (hdr-histogram-js), recorded in microseconds so that sub-millisecond
// round trips keep their resolution; reported in milliseconds.
const hdr = require('hdr-histogram-js');

function histogram() {
  return hdr.build({
    bitBucketSize: 'packed',
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

const ms = (us) => Math.round(us) / 1000;

/** The summary kept in results: counts and percentiles in ms. */
function summarize(h) {
  if (h.totalCount === 0) return { count: 0 };
  return {
    count: h.totalCount,
    minMs: ms(h.minNonZeroValue),
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    p999Ms: ms(h.getValueAtPercentile(99.9)),
    maxMs: ms(h.maxValue),
    meanMs: Math.round(h.mean) / 1000,
  };
}

module.exports = { histogram, summarize };
