import { Controller, Get, HttpCode } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { errorExampleRefs } from '../common/api-errors.decorator';
import { AppError } from '../common/app-error';
import { ErrorBodyDto } from '../common/error-body.dto';
import { Public } from '../common/public.decorator';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { HealthDto, ReadinessDto } from './health.dto';

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly mqtt: CloudMqttClient,
  ) {}

  @Get('live')
  @HttpCode(200)
  @ApiOperation({ summary: 'Liveness: the process answers' })
  @ApiOkResponse({ type: HealthDto, description: 'The process is up' })
  live(): HealthDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOperation({ summary: 'Readiness: the database and the MQTT broker are reachable' })
  @ApiOkResponse({ type: ReadinessDto, description: 'Ready to serve' })
  @ApiServiceUnavailableResponse({
    type: ErrorBodyDto,
    description: 'The database or the MQTT broker is unreachable',
    examples: errorExampleRefs('SERVICE_UNAVAILABLE'),
  })
  async ready(): Promise<ReadinessDto> {
    let database = false;
    try {
      await this.dataSource.query('SELECT 1');
      database = true;
    } catch {
      database = false;
    }
    const mqtt = this.mqtt.connected;
    if (!database || !mqtt) {
      const down = [!database && 'database', !mqtt && 'mqtt'].filter(Boolean).join(', ');
      throw new AppError('SERVICE_UNAVAILABLE', 'Not ready', `Unavailable: ${down}`);
    }
    return { status: 'ok', database: 'up', mqtt: 'up' };
  }
}
