import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Registry } from 'prom-client';
import { AppError } from '../common/app-error';
import { Public } from '../common/public.decorator';
import { digest, digestEquals } from '../common/secrets';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppMetrics } from './app-metrics';
import { FleetGauges } from './fleet-gauges';

/**
 * `GET /metrics` for Prometheus. Not a tenant API route: no user token, no rate limit (both key on
 * a principal), and left out of the OpenAPI spec (integrators' clients have no use for it). With
 * METRICS_TOKEN set it needs that bearer token; without, it is public (docs/metrics.md).
 */
@ApiExcludeController()
@Public()
@Controller('metrics')
export class MetricsController {
  private readonly tokenDigest: Buffer | undefined;

  constructor(
    private readonly metrics: AppMetrics,
    private readonly fleet: FleetGauges,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.tokenDigest = config.metricsToken === undefined ? undefined : digest(config.metricsToken);
  }

  @Get()
  async scrape(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<string> {
    this.authorize(req.headers.authorization);
    await this.fleet.refresh();
    const text = await this.metrics.registry.metrics();
    // Set only on success (a @Header would label the JSON error body text/plain too).
    res.setHeader('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE);
    return text;
  }

  /** Digests of equal length compared in constant time: the token's length and content do not leak. */
  private authorize(header: string | undefined): void {
    if (!this.tokenDigest) return;
    const match = typeof header === 'string' ? /^Bearer (\S+)$/.exec(header) : null;
    if (match && digestEquals(match[1], this.tokenDigest)) return;
    throw new AppError(
      'UNAUTHORIZED',
      'Authentication required',
      'Send Authorization: Bearer <METRICS_TOKEN>',
      { 'WWW-Authenticate': 'Bearer realm="metrics"' },
    );
  }
}
