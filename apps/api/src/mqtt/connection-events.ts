import { Injectable } from '@nestjs/common';
import { EventEmitter } from 'node:events';

/** The MQTT link state of a device or gateway, as its lifecycle messages say (BIRTH, DC, LWT). */
export type LinkStatus = 'NEVER_CONNECTED' | 'CONNECTED' | 'DISCONNECTED' | 'MISSING';

export interface ConnectionChange {
  kind: 'device' | 'gateway';
  /** The device's or gateway's id. */
  id: string;
  scopeId: string;
  status: LinkStatus;
}

/**
 * In-process notifications of link changes of devices and gateways: a request waiting for a
 * reply fails at once when its target drops off, and a gateway that comes back gets its peers.
 */
@Injectable()
export class ConnectionEvents {
  private readonly emitter = new EventEmitter().setMaxListeners(0);

  emit(change: ConnectionChange): void {
    this.emitter.emit('change', change);
  }

  subscribe(listener: (change: ConnectionChange) => void): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }
}
