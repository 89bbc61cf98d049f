import { Controller, Get, Headers, Query, Res } from '@nestjs/common';
import { ApiHeader, ApiNotModifiedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Authenticated, CurrentScope, ApiScopeParam } from '../auth/auth.decorators';
import type { RequestScope } from '../auth/principal';
import {
  FleetScopeQueryDto,
  FleetStatusListDto,
  FleetStatusQueryDto,
  FleetSummaryDto,
} from './dto/fleet-status.dto';
import { FleetStatusService } from './fleet-status.service';

@ApiTags('vpn')
@ApiScopeParam()
@Controller('v1/:scopeId/vpn')
export class FleetStatusController {
  constructor(private readonly fleet: FleetStatusService) {}

  @Get('status')
  @Authenticated({ permission: 'vpn:read' })
  @ApiOperation({
    summary: 'The VPN status of every device of the scope (or subtree), one page, ordered by client id',
    description:
      "Each item is the device's `GET …/devices/{id}/vpn` answer plus who the device is. The answer " +
      'carries a weak ETag; send it back in If-None-Match to get 304 while nothing changed (docs/fleet-status.md).',
  })
  @ApiHeader({ name: 'If-None-Match', required: false, description: 'An ETag of an earlier answer' })
  @ApiOkResponse({
    type: FleetStatusListDto,
    description: 'One page of VPN statuses',
    headers: { ETag: { description: 'Weak validator of this page', schema: { type: 'string' } } },
  })
  @ApiNotModifiedResponse({ description: 'The page is unchanged since the ETag sent in If-None-Match' })
  async status(
    @CurrentScope() scope: RequestScope,
    @Query() query: FleetStatusQueryDto,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<string | undefined> {
    const page = await this.fleet.list(scope, query, ifNoneMatch);
    res.setHeader('ETag', page.etag);
    if (page.notModified) {
      res.status(304);
      return undefined;
    }
    // The body is FleetStatusListDto's JSON, written by the page statement: sent as it is.
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    return page.json;
  }

  @Get('summary')
  @Authenticated({ permission: 'vpn:read' })
  @ApiOperation({ summary: 'How many devices of the scope (or subtree) are in each link and VPN state' })
  @ApiOkResponse({ type: FleetSummaryDto, description: 'The counts' })
  summary(@CurrentScope() scope: RequestScope, @Query() query: FleetScopeQueryDto): Promise<FleetSummaryDto> {
    return this.fleet.summary(scope, query);
  }
}
