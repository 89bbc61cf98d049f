import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** A ticket as it was when it was used up. */
export interface RedeemedTicket {
  tokenId: string;
  scopeId: string;
  /** The ticket's time had not run out. */
  fresh: boolean;
  /** The path of the scope it was issued for; null when that account is gone. */
  scopePath: string | null;
}

/**
 * Every SQL statement about event-stream tickets (`event_stream_ticket`). A ticket is stored as
 * the digest of its secret only; redeeming deletes the row, so each ticket opens one stream on
 * whichever instance sees it first.
 */
@Injectable()
export class EventStreamTicketsRepository {
  constructor(private readonly dataSource: DataSource) {}

  async insert(ticket: { digest: Buffer; tokenId: string; scopeId: string; expiresOn: Date }): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO event_stream_ticket (digest, token_id, scope_id, expires_on) VALUES ($1, $2, $3, $4)`,
      [ticket.digest, ticket.tokenId, ticket.scopeId, ticket.expiresOn],
    );
  }

  /**
   * Deletes the ticket with this digest and answers what it was, with its scope's path, in one
   * statement (so two instances never both redeem it); null when there is no such ticket.
   */
  async redeem(digest: Buffer): Promise<RedeemedTicket | null> {
    // TypeORM answers a DELETE with [rows, affected].
    const [rows]: [
      Array<{ token_id: string; scope_id: string; path: string | null; fresh: boolean }>,
      number,
    ] = await this.dataSource.query(
      `DELETE FROM event_stream_ticket t WHERE t.digest = $1
         RETURNING t.token_id, t.scope_id, t.expires_on > now() AS fresh,
                   (SELECT path FROM account a WHERE a.id = t.scope_id) AS path`,
      [digest],
    );
    const row = rows[0];
    if (!row) return null;
    return { tokenId: row.token_id, scopeId: row.scope_id, fresh: row.fresh, scopePath: row.path };
  }

  /** Deletes the tickets whose time ran out; answers how many. */
  async purgeExpired(): Promise<number> {
    const [, affected]: [unknown, number] = await this.dataSource.query(
      `DELETE FROM event_stream_ticket WHERE expires_on < now()`,
    );
    return affected;
  }
}
