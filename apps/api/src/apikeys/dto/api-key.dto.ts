import { ApiProperty } from '@nestjs/swagger';
import { IsIn, IsString, Length } from 'class-validator';
import { EntityDto, ListQueryDto, ListResultDto } from '../../common/list';
import { ROLES, type Role } from '../../auth/roles';
import type { ApiKey } from '../api-key.entity';

export class CreateApiKeyDto {
  @ApiProperty({ example: 'ci-pipeline' })
  @IsString()
  @Length(1, 255)
  name: string;

  @ApiProperty({ enum: ROLES, description: 'At most the role of its creator' })
  @IsIn(ROLES)
  role: Role;
}

export class ApiKeyListQueryDto extends ListQueryDto {}

export class ApiKeyDto extends EntityDto {
  @ApiProperty()
  name: string;

  @ApiProperty({ enum: ROLES })
  role: string;

  @ApiProperty({ nullable: true, type: Date })
  lastUsedOn: Date | null;
}

export class CreatedApiKeyDto extends ApiKeyDto {
  @ApiProperty({ description: 'The secret, shown only in this response' })
  apiKey: string;
}

export class ApiKeyListDto extends ListResultDto {
  @ApiProperty({ type: [ApiKeyDto] })
  items: ApiKeyDto[];
}

export function toApiKeyDto(k: ApiKey): ApiKeyDto {
  return {
    id: k.id,
    scopeId: k.scopeId,
    name: k.name,
    role: k.role,
    lastUsedOn: k.lastUsedOn,
    createdOn: k.createdOn,
    createdBy: k.createdBy,
  };
}
