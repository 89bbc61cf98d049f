import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';

export class EventStreamQueryDto {
  @ApiPropertyOptional({
    description:
      'Resume after this event id (for clients that cannot send the Last-Event-ID header); the header wins',
    example: '1234',
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  lastEventId?: string;

  @ApiPropertyOptional({
    description: 'A single-use ticket from POST …/vpn/events/_ticket, instead of an Authorization header',
  })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  ticket?: string;
}

export class EventTicketDto {
  @ApiProperty({ description: 'Single-use; opens one stream as ?ticket=… within 60 s' })
  ticket: string;

  @ApiProperty({ type: String, format: 'date-time' })
  expiresOn: Date;
}
