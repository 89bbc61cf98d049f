import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AccessToken } from './access-token.entity';
import { TokensRepository } from './tokens.repository';

/**
 * The access-token table on its own, without the rest of authentication: the users and API keys
 * modules revoke tokens through it, and the auth module (which depends on those two for its
 * sign-in lookups) uses it too, so no module needs the other in both directions.
 */
@Module({
  imports: [TypeOrmModule.forFeature([AccessToken])],
  providers: [TokensRepository],
  exports: [TokensRepository],
})
export class TokensModule {}
