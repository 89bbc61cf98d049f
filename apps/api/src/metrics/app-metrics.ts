import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/** Seconds: from a fast status read (~1 ms) to a command waiting out its longest timeout (300 s). */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** A command is a device round trip: tens of milliseconds to its timeout. */
const COMMAND_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What the VPN status ingest counts, monotonically, since the process started. */
export interface StatusIngestTallies {
  readonly applied: number;
  readonly failed: number;
  readonly dropped: number;
  readonly rejected: number;
}

/** The route label of a request no route handled (404s, body or input refused before routing). */
export const UNMATCHED_ROUTE = '<unmatched>';

/**
 * The service's Prometheus metrics, in a registry of its own (not prom-client's global one), so
 * several APIs in one process (the integration tests) never share or clash over a series. Names
 * follow Prometheus conventions (`_total`, `_seconds`); labels are low-cardinality only: route
 * templates, verbs, outcomes and states, never device, account or request ids. docs/metrics.md
 * lists every series.
 */
@Injectable()
export class AppMetrics {
  readonly registry = new Registry();

  readonly httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP requests by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });

  readonly vpnCommands = new Counter({
    name: 'vpn_commands_total',
    help: 'VPN commands that ran to an outcome (completed, failed, timeout), by verb',
    labelNames: ['verb', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly vpnCommandDuration = new Histogram({
    name: 'vpn_command_duration_seconds',
    help: 'How long VPN commands ran, from sending to the recorded outcome, by verb',
    labelNames: ['verb'] as const,
    buckets: COMMAND_BUCKETS,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Exposes the status ingest's own tallies (it counts them anyway, for benchmarks) as counters,
   * read at scrape time: the hot path of thousands of reports a second gains no work.
   */
  watchStatusIngest(source: StatusIngestTallies): void {
    const registers = [this.registry];
    new Counter({
      name: 'vpn_status_reports_ingested_total',
      help: 'Unsolicited VPN status reports written (stored, or found older than the stored one)',
      registers,
      collect() {
        this.reset();
        this.inc(source.applied);
      },
    });
    new Counter({
      name: 'vpn_status_reports_dropped_total',
      help: 'VPN status reports not written, by reason: malformed, queue_full, write_failed',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        this.reset();
        this.inc({ reason: 'malformed' }, source.rejected);
        this.inc({ reason: 'queue_full' }, source.dropped);
        this.inc({ reason: 'write_failed' }, source.failed);
      },
    });
  }

  /** Counts a command that ended (its operation left RUNNING). */
  commandEnded(verb: string, status: string, durationMs: number): void {
    this.vpnCommands.inc({ verb, outcome: status.toLowerCase() });
    this.vpnCommandDuration.observe({ verb }, Math.max(0, durationMs) / 1000);
  }
}
