import { Global, Module } from '@nestjs/common';
import { AppMetrics } from './app-metrics';
import { FleetCountsRepository } from './fleet-counts.repository';
import { FleetGauges } from './fleet-gauges';
import { MetricsController } from './metrics.controller';

/** Prometheus metrics: the registry every domain reports into, the scrape-time gauges, GET /metrics. */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [AppMetrics, FleetCountsRepository, FleetGauges],
  exports: [AppMetrics],
})
export class MetricsModule {}
