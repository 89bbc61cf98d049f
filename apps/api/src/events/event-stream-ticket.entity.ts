import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A single-use ticket that opens one event stream without an Authorization header (a browser's
 * EventSource cannot send one). It stands for the access token it was issued with, in the scope
 * it was issued for: the stream authenticates as that token and ends when the token does. Stored
 * as a SHA-256 digest of its 256-bit secret, so every instance accepts it once.
 */
@Entity('event_stream_ticket')
export class EventStreamTicket {
  @PrimaryColumn({ type: 'bytea' })
  digest: Buffer;

  @Column({ name: 'token_id', type: 'uuid' })
  tokenId: string;

  @Column({ name: 'scope_id', type: 'uuid' })
  scopeId: string;

  @Index('event_stream_ticket_expires_idx')
  @Column({ name: 'expires_on', type: 'timestamptz' })
  expiresOn: Date;
}
