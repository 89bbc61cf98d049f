import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository, type EntityManager } from 'typeorm';
import { User } from './user.entity';

/** What a sign-in needs to know about a user. */
export type UserCredentials = Pick<User, 'id' | 'scopeId' | 'passwordHash' | 'enabled'>;

/** A new user row: the fields the database does not fill in itself. */
export type NewUser = Pick<User, 'scopeId' | 'username' | 'passwordHash' | 'role' | 'enabled'>;

/**
 * The user lookups other modules need (sign-in, first-start seeding), so none of them reaches
 * into the user table itself. Methods that take an EntityManager run in the caller's transaction.
 */
@Injectable()
export class UsersRepository {
  constructor(@InjectRepository(User) private readonly users: Repository<User>) {}

  /** The user signing in as `username` (unique across all accounts); null when there is none. */
  findByUsername(username: string): Promise<UserCredentials | null> {
    return this.users.findOne({ where: { username } });
  }

  /**
   * Replaces a password hash made with older parameters. Not a change of the user: optlock and
   * modifiedOn stay, and a concurrent password change (another hash by now) wins.
   */
  async upgradePasswordHash(id: string, oldHash: string, newHash: string): Promise<void> {
    await this.users.query('UPDATE app_user SET password_hash = $1 WHERE id = $2 AND password_hash = $3', [
      newHash,
      id,
      oldHash,
    ]);
  }

  /** Sets a user's password hash (the operator's reset of the admin password at start). */
  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.users.update({ id }, { passwordHash });
  }

  async insert(user: NewUser, em?: EntityManager): Promise<void> {
    await (em ? em.getRepository(User) : this.users).insert(user);
  }
}
