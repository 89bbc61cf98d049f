import { Module } from '@nestjs/common';
import { AccountsModule } from '../accounts/accounts.module';
import { UsersModule } from '../users/users.module';
import { FirstStartService } from './first-start.service';

/**
 * What a fresh database needs before anyone can sign in: the root account and its admin user,
 * created on the first start only. Kept apart from authentication, which only reads users.
 */
@Module({
  imports: [AccountsModule, UsersModule],
  providers: [FirstStartService],
})
export class SeedingModule {}
