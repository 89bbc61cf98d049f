import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { Account } from './account.entity';
import { AccountsController } from './accounts.controller';
import { AccountsRepository } from './accounts.repository';
import { AccountsService } from './accounts.service';
import { VpnSubnetAllocator } from './vpn-subnet.allocator';

@Module({
  imports: [TypeOrmModule.forFeature([Account])],
  controllers: [AccountsController],
  providers: [AccountsService, AccountsRepository, VpnSubnetAllocator],
  exports: [AccountsService, AccountsRepository, VpnSubnetAllocator],
})
export class AccountsModule {}
