import { Module } from '@nestjs/common';
import { InstanceLease } from './instance-lease';
import { InstancesRepository } from './instances.repository';

/** The lease of this API process among its replicas (docs/scale-out.md). */
@Module({
  providers: [InstancesRepository, InstanceLease],
  exports: [InstancesRepository, InstanceLease],
})
export class InstancesModule {}
