import { Module } from '@nestjs/common';
import { FleetStatusController } from './fleet-status.controller';
import { FleetStatusRepository } from './fleet-status.repository';
import { FleetStatusService } from './fleet-status.service';

/** Fleet-wide VPN status for dashboards: the status list with its ETag, and the summary. */
@Module({
  controllers: [FleetStatusController],
  providers: [FleetStatusService, FleetStatusRepository],
})
export class FleetModule {}
