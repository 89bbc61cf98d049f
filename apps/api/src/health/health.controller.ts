import { Controller, Get, HttpCode } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
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
  @ApiOkResponse({ type: HealthDto })
  live(): HealthDto {
    return { status: 'ok' };
  }

  @Get('ready')
  @ApiOkResponse({ type: ReadinessDto })
  @ApiServiceUnavailableResponse({
    type: ErrorBodyDto,
    description: 'The database or the MQTT broker is unreachable',
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
