import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, IsString, Length, Matches, MaxLength } from 'class-validator';
import { ListQueryDto, ListResultDto, UpdatableEntityDto } from '../../common/list';
import { OptlockField } from '../../common/optlock';
import { ROLES, type Role } from '../../auth/roles';
import type { User } from '../user.entity';

const USERNAME = /^[A-Za-z0-9._@-]{3,255}$/;

export class CreateUserDto {
  @ApiProperty({ example: 'alice', pattern: USERNAME.source })
  @IsString()
  @Matches(USERNAME, { message: 'username must be 3–255 of A-Z a-z 0-9 . _ @ -' })
  username: string;

  @ApiProperty({ minLength: 8, maxLength: 256 })
  @IsString()
  @Length(8, 256)
  password: string;

  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES)
  role: Role;
}

export class UpdateUserDto {
  @ApiPropertyOptional({ enum: ROLES })
  @IsOptional()
  @IsIn(ROLES)
  role?: Role;

  @ApiPropertyOptional({
    minLength: 8,
    maxLength: 256,
    description: "A new password; revokes the user's tokens",
  })
  @IsOptional()
  @IsString()
  @Length(8, 256)
  password?: string;

  @ApiPropertyOptional({ description: "false revokes the user's tokens and refuses sign-in" })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;

  @OptlockField()
  optlock: number;
}

export class UserListQueryDto extends ListQueryDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(255)
  username?: string;

  @ApiPropertyOptional({ enum: ROLES })
  @IsOptional()
  @IsIn(ROLES)
  role?: Role;
}

export class UserDto extends UpdatableEntityDto {
  @ApiProperty()
  username: string;

  @ApiProperty({ enum: ROLES })
  role: string;

  @ApiProperty()
  enabled: boolean;
}

export class UserListDto extends ListResultDto {
  @ApiProperty({ type: [UserDto] })
  items: UserDto[];
}

export function toUserDto(u: User): UserDto {
  return {
    id: u.id,
    scopeId: u.scopeId,
    username: u.username,
    role: u.role,
    enabled: u.enabled,
    createdOn: u.createdOn,
    createdBy: u.createdBy,
    modifiedOn: u.modifiedOn,
    modifiedBy: u.modifiedBy,
    optlock: u.optlock,
  };
}
