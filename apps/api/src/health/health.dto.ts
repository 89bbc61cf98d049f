import { ApiProperty } from '@nestjs/swagger';

export class HealthDto {
  @ApiProperty({ example: 'ok' })
  status: string;
}

export class ReadinessDto extends HealthDto {
  @ApiProperty({ enum: ['up', 'down'] })
  database: string;

  @ApiProperty({ enum: ['up', 'down'] })
  mqtt: string;
}
