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

/** A device or gateway whose live session the broker ended without publishing its will. */
export interface SessionCut {
  kind: 'device' | 'gateway';
  id: string;
  /** The name of its account and its client id: the topic levels of its lifecycle messages. */
  account: string;
  clientId: string;
}

/**
 * In-process notifications of link changes of devices and gateways: a request waiting for a
 * reply fails at once when its target drops off, and a gateway that comes back gets its peers.
 */
@Injectable()
export class ConnectionEvents {
  private readonly emitter = new EventEmitter().setMaxListeners(0);
  private readonly cutHandlers = new Map<SessionCut['kind'], (cut: SessionCut) => Promise<void>>();

  /**
   * Where the devices and gateways domains apply a session the broker cut silently: Mosquitto's
   * dynamic-security plugin kicks a changed or deleted client without its will, so no LWT tells
   * the cloud (docs/brokers.md).
   */
  onSessionCut(kind: SessionCut['kind'], handler: (cut: SessionCut) => Promise<void>): void {
    this.cutHandlers.set(kind, handler);
  }

  /** Called by a broker adapter once the broker has ended `cut`'s session without its will. */
  async sessionCut(cut: SessionCut): Promise<void> {
    await this.cutHandlers.get(cut.kind)?.(cut);
  }

  emit(change: ConnectionChange): void {
    this.emitter.emit('change', change);
  }

  subscribe(listener: (change: ConnectionChange) => void): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }
}
