import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Failed sign-ins in the current window of one counter: a username or a client address. The
 * key is a SHA-256 digest of the counter's name, so neither usernames (people type passwords
 * there) nor addresses are stored in clear. Shared by every API instance (see LoginThrottle).
 */
@Entity('login_failure')
export class LoginFailure {
  @PrimaryColumn({ type: 'bytea' })
  key: Buffer;

  @Column({ type: 'integer' })
  failures: number;

  @Column({ name: 'window_start', type: 'timestamptz', default: () => 'now()' })
  windowStart: Date;
}
