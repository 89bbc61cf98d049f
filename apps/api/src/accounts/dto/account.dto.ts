import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { ACCOUNT_NAME_PATTERN } from '@app/protocol';
import { BooleanQuery, ListQueryDto, ListResultDto, UpdatableEntityDto } from '../../common/list';
import { OptlockField } from '../../common/optlock';
import { IsAccountName, IsIpv4Cidr } from '../../common/validators';
import { IsBoolean } from 'class-validator';
import type { Account } from '../account.entity';

export class CreateAccountDto {
  @ApiProperty({
    example: 'acme',
    pattern: ACCOUNT_NAME_PATTERN.source,
    description: 'Topic-safe, unique; the MQTT account segment',
  })
  @IsString()
  @IsAccountName()
  name: string;

  @ApiPropertyOptional({ maxLength: 1024 })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  description?: string;

  @ApiPropertyOptional({
    example: '10.210.0.0/20',
    description:
      'IPv4 network (prefix 8–30) for the tunnel addresses of its devices; default: the next free block of the configured supernet',
  })
  @IsOptional()
  @IsString()
  @IsIpv4Cidr({ minPrefix: 8, maxPrefix: 30 })
  vpnSubnet?: string;
}

export class UpdateAccountDto {
  @ApiPropertyOptional({ maxLength: 1024 })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  description?: string;

  @OptlockField('The optlock value last read')
  optlock: number;
}

export class AccountListQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ description: 'All descendants instead of direct children' })
  @IsOptional()
  @BooleanQuery()
  @IsBoolean()
  recursive: boolean = false;

  @ApiPropertyOptional({ description: 'Exact account name' })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  name?: string;
}

export class AccountDto extends UpdatableEntityDto {
  @ApiProperty()
  name: string;

  @ApiProperty()
  description: string;

  @ApiProperty({ example: '10.200.16.0/20' })
  vpnSubnet: string;

  @ApiProperty({ description: 'Ids from the root account down to this one', type: [String] })
  parentPath: string[];
}

export class AccountListDto extends ListResultDto {
  @ApiProperty({ type: [AccountDto] })
  items: AccountDto[];
}

export function toAccountDto(a: Account): AccountDto {
  return {
    id: a.id,
    scopeId: a.scopeId,
    name: a.name,
    description: a.description,
    vpnSubnet: a.vpnSubnet,
    parentPath: a.path.split('/').filter(Boolean),
    createdOn: a.createdOn,
    createdBy: a.createdBy,
    modifiedOn: a.modifiedOn,
    modifiedBy: a.modifiedBy,
    optlock: a.optlock,
  };
}
