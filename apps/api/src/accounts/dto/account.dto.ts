import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { BooleanQuery, ListQueryDto, ListResultDto, UpdatableEntityDto } from '../../common/list';
import { OptlockField } from '../../common/optlock';
import { IsBoolean } from 'class-validator';
import type { Account } from '../account.entity';

export const ACCOUNT_NAME = /^[a-z0-9][a-z0-9-]{1,62}$/;
export const IPV4_CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([89]|[12]\d|30)$/;

export class CreateAccountDto {
  @ApiProperty({
    example: 'acme',
    pattern: ACCOUNT_NAME.source,
    description: 'Topic-safe, unique; the MQTT account segment',
  })
  @IsString()
  @Matches(ACCOUNT_NAME, { message: 'name must match [a-z0-9][a-z0-9-]{1,62}' })
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
  @Matches(IPV4_CIDR, {
    message: 'vpnSubnet must be an IPv4 CIDR with a prefix from 8 to 30, e.g. 10.210.0.0/20',
  })
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
