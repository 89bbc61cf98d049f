import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Length, MaxLength } from 'class-validator';
import { ROLES } from '../roles';

export class UserCredentialsDto {
  @ApiProperty({ example: 'admin' })
  @IsString()
  @Length(1, 255)
  username: string;

  @ApiProperty({ example: 'correct horse battery staple' })
  @IsString()
  @Length(1, 1024)
  password: string;
}

export class ApiKeyCredentialsDto {
  @ApiProperty({ description: 'The secret returned once when the API key was created' })
  @IsString()
  @Length(1, 1024)
  apiKey: string;
}

export class RefreshTokenDto {
  @ApiProperty({ description: 'The access token (JWT) being refreshed; it may have expired' })
  @IsString()
  @MaxLength(4096)
  tokenId: string;

  @ApiProperty()
  @IsString()
  @Length(1, 1024)
  refreshToken: string;
}

export class AccessTokenDto {
  @ApiProperty({ description: 'The JWT to send as Authorization: Bearer <tokenId>' })
  tokenId: string;

  @ApiProperty({ description: 'Shown once; send it with tokenId to /v1/authentication/refresh' })
  refreshToken: string;

  @ApiProperty()
  expiresOn: Date;

  @ApiProperty()
  refreshExpiresOn: Date;

  @ApiProperty({ format: 'uuid' })
  scopeId: string;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  userId: string | null;

  @ApiPropertyOptional({ format: 'uuid', nullable: true, type: String })
  apiKeyId: string | null;
}

export class AuthInfoDto {
  @ApiProperty({ format: 'uuid' })
  tokenId: string;

  @ApiProperty({ format: 'uuid' })
  scopeId: string;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  userId: string | null;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  apiKeyId: string | null;

  @ApiProperty({ enum: ROLES })
  role: string;

  @ApiProperty({ type: [String] })
  permissions: string[];
}
