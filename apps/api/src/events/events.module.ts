import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { DevicesModule } from '../devices/devices.module';
import { MqttModule } from '../mqtt/mqtt.module';
import { EventFeedRepository } from './event-feed.repository';
import { EventStreamHub } from './event-stream.hub';
import { EventStreamTicketsRepository } from './event-stream-tickets.repository';
import { EventStreamService } from './event-stream.service';
import { EventsController } from './events.controller';

/** The fleet event feed (docs/events.md): the model, the watermarked reader and the SSE stream. */
@Module({
  imports: [AuthModule, MqttModule, DevicesModule],
  controllers: [EventsController],
  providers: [EventFeedRepository, EventStreamTicketsRepository, EventStreamHub, EventStreamService],
  exports: [EventFeedRepository],
})
export class EventsModule {}
