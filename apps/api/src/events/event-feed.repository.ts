import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { PUBLIC_TYPE_SQL, fleetEventData, type FleetEvent, type FleetEventType } from './fleet-event';

/** Which accounts' events to read. */
export type FeedScope =
  /** An account and everything below it: the account's materialised path (`/root/…/id/`). */
  | { subtreePath: string }
  /** Exactly these accounts. */
  | { accountIds: readonly string[] };

export interface ReadAfterOptions {
  /** At most this many events (1–1000). */
  limit: number;
  /** Absent: every account. */
  scope?: FeedScope;
  /** Absent: every public type. */
  types?: readonly FleetEventType[];
}

export interface FeedPage {
  /** Events with afterId < id ≤ the safe watermark, in id order. */
  events: FleetEvent[];
  /**
   * Where the next read starts: the last event's id when the page is full, otherwise the
   * watermark (every event up to it has been considered, including those the filters dropped).
   * Never below afterId.
   */
  position: string;
}

/** Where a resume point stands against the stored events. */
export type CursorStatus = 'ok' | 'pruned' | 'unknown';

interface Row {
  id: string;
  type: string;
  public_type: FleetEventType;
  scope_id: string;
  device_id: string;
  client_id: string;
  received_on: Date;
  details: Record<string, unknown>;
  scope_path: string;
}

/** A snapshot's largest visible event id and the transactions it saw running. */
interface Candidate {
  maxId: bigint;
  running: ReadonlySet<string>;
}

const MAX_PENDING = 256;
/** Callers within this long of the last watermark refresh share it. */
const REFRESH_COALESCE_MS = 50;

/** Parses `pg_snapshot` text (`xmin:xmax:xip,xip,…`) into its running transaction ids. */
export function runningXids(snapshot: string): Set<string> {
  const xip = snapshot.split(':')[2] ?? '';
  return new Set(xip === '' ? [] : xip.split(','));
}

/**
 * Reads the fleet event feed (device_event rows of the public types, docs/events.md) in id order,
 * only up to a safe watermark.
 *
 * Event ids are taken from a sequence when rows are inserted but become visible when their
 * transaction commits, so a reader that just remembered the highest id it saw could skip a row
 * whose transaction committed late. The watermark closes that gap. Each refresh reads, in one
 * statement snapshot S, the largest visible id L and the transactions S saw running. Every id
 * ≤ L was taken before S, by a transaction that had a transaction id before it took the event id
 * (the `device_event_assign_id` trigger makes sure), so that transaction was either committed
 * (its rows visible) or running in S. Once none of the transactions S saw running is running
 * any more, every id ≤ L is final and L becomes the watermark. A row's transaction id alone is
 * not enough: transaction ids and event ids need not be taken in the same order.
 *
 * The watermark lives in this process (one per instance; every instance computes the same one
 * from the same database); it only ever grows. A transaction that writes and stays open holds
 * it back until it ends (Postgres' idle_in_transaction_session_timeout bounds that).
 */
@Injectable()
export class EventFeedRepository {
  private safeId: bigint | null = null;
  private latestSeen = 0n;
  private pending: Candidate[] = [];
  private refreshing: Promise<void> | null = null;
  private refreshedAt = 0;

  constructor(private readonly dataSource: DataSource) {}

  /** The watermark after a refresh (null until the first one is known to be safe). */
  async watermark(): Promise<string | null> {
    await this.refresh();
    return this.safeId === null ? null : this.safeId.toString();
  }

  /**
   * Events after `afterId` (a decimal event id; '0' = from the beginning) up to the watermark,
   * filtered by scope and type, in id order.
   */
  async readAfter(afterId: string, opts: ReadAfterOptions): Promise<FeedPage> {
    const { rows, position } = await this.read(afterId, opts);
    return { events: rows.map(toFleetEvent), position };
  }

  /** Like readAfter, with each event's account path (`/root/…/id/`) for matching subtrees in memory. */
  async readWithScopePaths(
    afterId: string,
    opts: ReadAfterOptions,
  ): Promise<{ events: Array<{ event: FleetEvent; scopePath: string }>; position: string }> {
    const { rows, position } = await this.read(afterId, opts);
    return { events: rows.map((r) => ({ event: toFleetEvent(r), scopePath: r.scope_path })), position };
  }

  private async read(afterId: string, opts: ReadAfterOptions): Promise<{ rows: Row[]; position: string }> {
    if (!/^\d{1,19}$/.test(afterId)) throw new RangeError(`not an event id: ${afterId}`);
    const after = BigInt(afterId);
    const limit = Math.max(1, Math.min(1000, Math.floor(opts.limit)));
    const upTo = await this.watermark();
    if (upTo === null || BigInt(upTo) <= after) return { rows: [], position: afterId };
    const params: unknown[] = [afterId, upTo, limit];
    const where: string[] = [];
    if (opts.scope && 'subtreePath' in opts.scope) {
      params.push(opts.scope.subtreePath);
      where.push(`starts_with(a.path, $${params.length})`);
    } else if (opts.scope) {
      params.push(opts.scope.accountIds);
      where.push(`e.scope_id = ANY($${params.length}::uuid[])`);
    }
    if (opts.types) {
      params.push(opts.types);
      where.push(`${PUBLIC_TYPE_SQL('e')} = ANY($${params.length}::text[])`);
    }
    const rows: Row[] = await this.dataSource.query(
      `SELECT e.id::text AS id, e.type, ${PUBLIC_TYPE_SQL('e')} AS public_type, e.scope_id, e.device_id,
              d.client_id, e.received_on, e.details, a.path AS scope_path
         FROM device_event e
         JOIN device d ON d.id = e.device_id
         JOIN account a ON a.id = e.scope_id
        WHERE e.id > $1 AND e.id <= $2 AND e.type IN ('VPN_STATUS', 'BIRTH', 'DC', 'LWT')
          ${where.map((w) => `AND ${w}`).join(' ')}
        ORDER BY e.id
        LIMIT $3`,
      params,
    );
    return { rows, position: rows.length === limit ? rows[rows.length - 1].id : upTo };
  }

  /**
   * Where a client that starts without a resume point begins ("from now"): the watermark, once it
   * covers every event committed before the call. The position is the same for every scope.
   */
  async latestId(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    // A snapshot taken after this call began: every event committed before the call is at or
    // below `target`, so "now" never replays one of them; one that commits later is above the
    // position returned (the watermark waits for the transactions the snapshot saw running).
    if (this.refreshing) await this.refreshing;
    this.refreshedAt = 0;
    await this.refresh();
    const target = this.latestSeen;
    for (;;) {
      if (this.safeId !== null && this.safeId >= target) return this.safeId.toString();
      if (Date.now() >= deadline)
        throw new Error('no safe event watermark yet: a writing transaction stays open');
      await new Promise((r) => setTimeout(r, REFRESH_COALESCE_MS * 2));
      await this.refresh();
    }
  }

  /**
   * Whether the feed can continue after `afterId` without a gap: `pruned` when events after it
   * are no longer stored, `unknown` when it is beyond any id this database has handed out (a
   * resume point from another database).
   */
  async cursorStatus(afterId: string): Promise<CursorStatus> {
    const after = BigInt(afterId);
    await this.refresh();
    if (after > this.latestSeen) {
      // Refresh once more: the id may have been committed after the last refresh.
      this.refreshedAt = 0;
      await this.refresh();
      if (after > this.latestSeen) return 'unknown';
    }
    const [row]: Array<{ oldest: string | null }> = await this.dataSource.query(
      'SELECT min(id)::text AS oldest FROM device_event',
    );
    if (row.oldest !== null && after < BigInt(row.oldest) - 1n) return 'pruned';
    return 'ok';
  }

  private refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (Date.now() - this.refreshedAt < REFRESH_COALESCE_MS) return Promise.resolve();
    this.refreshing = this.takeSnapshot().finally(() => {
      this.refreshing = null;
      this.refreshedAt = Date.now();
    });
    return this.refreshing;
  }

  private async takeSnapshot(): Promise<void> {
    // One statement: max(id) and the snapshot text come from the same statement snapshot.
    const [row]: Array<{ max_id: string; snap: string }> = await this.dataSource.query(
      `SELECT COALESCE((SELECT max(id) FROM device_event), 0)::text AS max_id,
              pg_current_snapshot()::text AS snap`,
    );
    const maxId = BigInt(row.max_id);
    const running = runningXids(row.snap);
    if (maxId > this.latestSeen) this.latestSeen = maxId;
    // A candidate is final when none of the transactions it saw running still runs.
    this.pending = this.pending.filter((c) => {
      for (const x of c.running) if (running.has(x)) return true;
      this.advance(c.maxId);
      return false;
    });
    if (running.size === 0) this.advance(maxId);
    else this.pending.push({ maxId, running });
    // A long transaction keeps candidates pending; dropping middle ones only delays progress.
    if (this.pending.length > MAX_PENDING) this.pending.splice(1, 1);
  }

  private advance(id: bigint): void {
    if (this.safeId === null || id > this.safeId) this.safeId = id;
  }
}

function toFleetEvent(r: Row): FleetEvent {
  return {
    id: r.id,
    type: r.public_type,
    scopeId: r.scope_id,
    deviceId: r.device_id,
    clientId: r.client_id,
    occurredOn: r.received_on.toISOString(),
    data: fleetEventData(r.type, r.details),
  };
}
