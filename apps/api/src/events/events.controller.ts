import { Controller, Get, Headers, Param, Post, Query, Req, Res } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { ApiErrors } from '../common/api-errors.decorator';
import { Public } from '../common/public.decorator';
import { AuthGuard } from '../auth/auth.guard';
import { Authenticated, CurrentPrincipal, CurrentScope, ApiScopeParam } from '../auth/auth.decorators';
import type { AuthenticatedRequest, Principal, RequestScope } from '../auth/principal';
import { EventStreamQueryDto, EventTicketDto } from './dto/event-stream.dto';
import { EventStreamService } from './event-stream.service';

@ApiTags('vpn events')
@ApiScopeParam()
@Controller('v1/:scopeId/vpn/events')
export class EventsController {
  constructor(
    private readonly streams: EventStreamService,
    private readonly auth: AuthGuard,
  ) {}

  /**
   * Public on purpose: a ticket (`?ticket=`) authenticates it for browsers, whose EventSource
   * cannot send an Authorization header; without a ticket a bearer token with vpn:read is needed.
   */
  @Public()
  @Get()
  @ApiBearerAuth('bearer')
  @ApiOperation({
    summary:
      'Server-Sent Events: every VPN status and device connection change in the scope subtree, in order (docs/events.md)',
  })
  @ApiHeader({
    name: 'last-event-id',
    required: false,
    description: 'Last-Event-ID: resume after this event id',
  })
  @ApiOkResponse({
    description:
      'A text/event-stream: `id:` the event id, `event:` vpn.connected | vpn.disconnected | vpn.error | ' +
      'device.connection | reset | close, `data:` JSON; `: heartbeat` comments',
    content: { 'text/event-stream': { schema: { type: 'string' } } },
  })
  @ApiErrors(400, 401, 403)
  async stream(
    @Req() req: AuthenticatedRequest,
    @Res() res: Response,
    @Param('scopeId') rawScope: string,
    @Query() query: EventStreamQueryDto,
    @Headers('last-event-id') lastEventIdHeader?: string,
  ): Promise<void> {
    const raw = lastEventIdHeader ?? query.lastEventId;
    if (query.ticket !== undefined) {
      // Checked before the ticket is used up, so a bad resume point does not cost the ticket.
      const lastEventId = this.streams.parseLastEventId(raw);
      const { principal, scope } = await this.streams.redeemTicket(query.ticket, rawScope);
      await this.streams.open(res, principal, scope, lastEventId);
      return;
    }
    await this.auth.check(req, 'vpn:read');
    const lastEventId = this.streams.parseLastEventId(raw);
    await this.streams.open(res, req.principal!, req.scope!, lastEventId);
  }

  @Post('_ticket')
  @Authenticated({ permission: 'vpn:read' })
  @ApiOperation({ summary: 'A single-use ticket, valid 60 s, that opens one event stream as ?ticket=…' })
  @ApiCreatedResponse({ type: EventTicketDto, description: 'The ticket' })
  ticket(
    @CurrentPrincipal() principal: Principal,
    @CurrentScope() scope: RequestScope,
  ): Promise<EventTicketDto> {
    return this.streams.issueTicket(principal, scope.id);
  }
}
