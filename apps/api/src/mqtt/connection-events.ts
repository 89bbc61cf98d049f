import { Injectable } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import type { ConnectionStatus } from './device.entity';

export interface ConnectionChange {
  deviceId: string;
  scopeId: string;
  status: ConnectionStatus;
}

/** In-process notifications of device connection changes (e.g. to fail pending commands fast). */
@Injectable()
export class DeviceConnectionEvents {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  emit(change: ConnectionChange): void {
    this.emitter.emit('change', change);
  }

  subscribe(listener: (change: ConnectionChange) => void): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }
}
