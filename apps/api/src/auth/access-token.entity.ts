import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One issued access token (its JWT `jti`) with its refresh token digest. Kept in
 * the database so a logout or rotation is refused at once by every instance.
 */
@Entity('access_token')
export class AccessToken {
  @PrimaryColumn('uuid')
  id: string;

  @Index('access_token_user_idx')
  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId: string | null;

  @Index('access_token_api_key_idx')
  @Column({ name: 'api_key_id', type: 'uuid', nullable: true })
  apiKeyId: string | null;

  @Column({ name: 'scope_id', type: 'uuid' })
  scopeId: string;

  @Column({ name: 'expires_on', type: 'timestamptz' })
  expiresOn: Date;

  @Column({ name: 'refresh_digest', type: 'bytea' })
  refreshDigest: Buffer;

  @Column({ name: 'refresh_expires_on', type: 'timestamptz' })
  refreshExpiresOn: Date;

  @Column({ name: 'revoked_on', type: 'timestamptz', nullable: true })
  revokedOn: Date | null;

  @Column({ name: 'created_on', type: 'timestamptz', default: () => 'now()' })
  createdOn: Date;
}
