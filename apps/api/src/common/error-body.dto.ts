import { ApiProperty } from '@nestjs/swagger';
import { ErrorCodes } from './app-error';

/** OpenAPI schema of the error body every failing request answers with. */
export class ErrorBodyDto {
  @ApiProperty({ enum: Object.keys(ErrorCodes), example: 'NOT_FOUND' })
  result: string;

  @ApiProperty({ example: 'Device not found' })
  error: string;

  @ApiProperty({ example: 'No device with id 0b6f… in this scope' })
  details: string;
}
