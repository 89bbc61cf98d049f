import { Injectable, Logger } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import type { EntityManager } from 'typeorm';
import { AppError } from '../common/app-error';
import { GatewayPeerRepository, type PeerChange } from './gateway-peer.repository';
import { GatewaySyncService, unavailable } from './gateway-sync.service';
import { GatewayRepository, type UsableGateway } from './gateway.repository';

/** A device as its gateway peer needs it. */
export interface PeerDevice {
  id: string;
  scopeId: string;
  publicKey: string;
  tunnelIp: string;
}

/** The gateway that carries a device's tunnel, with the key and endpoint its profile needs. */
export type CarryingGateway = UsableGateway & { publicKey: string };

/** Why a device's tunnel left its gateway: sessions to the device end with it. */
export type DetachReason = 'disconnected' | 'deleted' | 'unreachable';

/**
 * A device's place on its gateway, as the VPN commands and the device registry change it:
 * attach (resolve the gateway, put the peer in the desired state, wait for the gateway's
 * acknowledgement), detach (take it out). The gateway applies the change through its publisher.
 */
@Injectable()
export class DevicePeers {
  private readonly logger = new Logger('DevicePeers');
  private readonly removals = new EventEmitter().setMaxListeners(0);

  constructor(
    private readonly gateways: GatewayRepository,
    private readonly peers: GatewayPeerRepository,
    private readonly sync: GatewaySyncService,
  ) {}

  /**
   * The gateway that carries the device's tunnel. 409 NO_GATEWAY when no gateway serves the
   * device, 503 GATEWAY_UNAVAILABLE when its gateway is offline. Changes nothing.
   */
  async gatewayFor(deviceId: string): Promise<CarryingGateway> {
    const gateway = await this.gateways.forDevice(deviceId);
    if (!gateway) {
      throw new AppError(
        'NO_GATEWAY',
        'No VPN gateway for this device',
        "The device has a WireGuard key, so its tunnel needs a gateway: create one in the device's account " +
          'or an ancestor (POST /v1/{scopeId}/gateways) and start it, or pin the device to one (gatewayId)',
      );
    }
    if (gateway.connectionStatus !== 'CONNECTED') {
      throw unavailable(`Gateway ${gateway.name} is ${gateway.connectionStatus}; start it and retry`);
    }
    if (gateway.publicKey === null) {
      throw unavailable(
        `Gateway ${gateway.name} announced no valid WireGuard key in its BIRTH; check its version`,
      );
    }
    return { ...gateway, publicKey: gateway.publicKey };
  }

  /**
   * Puts the device's peer on `gateway` in the desired state and starts publishing it; returns
   * the serial to wait for (see confirmed). 409 ENTRY_EXISTS, changing nothing, for a key another
   * peer of the gateway uses.
   */
  async place(gateway: CarryingGateway, device: PeerDevice): Promise<number> {
    const { serial, changes } = await this.peers.upsertDevicePeer(gateway.id, {
      deviceId: device.id,
      scopeId: device.scopeId,
      publicKey: device.publicKey,
      tunnelIp: device.tunnelIp,
    });
    // A device that moved to another gateway leaves its engineers' sessions on the old one behind.
    if (changes.some((c) => c.gatewayId !== gateway.id)) this.removed(device.id, 'disconnected');
    this.sync.publish(changes.length > 0 ? changes : [{ gatewayId: gateway.id, serial }]);
    return serial;
  }

  /** Resolves once the gateway holds `serial`; 504 GATEWAY_TIMEOUT at the deadline, 503 when it drops off. */
  confirmed(gateway: CarryingGateway, serial: number, deadline: number): Promise<void> {
    return this.sync.waitApplied(gateway.id, serial, deadline);
  }

  /**
   * Takes the device's peer off its gateway. With a deadline, waits (best effort) until the
   * gateway confirmed; the desired state is right either way and an offline gateway gets it
   * with its next sync.
   */
  async detach(deviceId: string, deadline?: number, why: DetachReason = 'disconnected'): Promise<void> {
    const changes = await this.peers.removeDevicePeers(deviceId);
    this.sync.publish(changes);
    this.removed(deviceId, why);
    if (deadline === undefined) return;
    await Promise.all(
      changes.map((c) =>
        this.sync
          .waitApplied(c.gatewayId, c.serial, deadline)
          .catch((err: unknown) =>
            this.logger.warn(
              { deviceId, gatewayId: c.gatewayId, err: err instanceof Error ? err.message : String(err) },
              'gateway did not confirm the peer removal yet',
            ),
          ),
      ),
    );
  }

  /** Inside a caller's transaction; after the commit call publish() and removed(). */
  detachIn(em: EntityManager, deviceId: string): Promise<PeerChange[]> {
    return this.peers.removeDevicePeers(deviceId, em);
  }

  publish(changes: readonly PeerChange[]): void {
    this.sync.publish(changes);
  }

  /** Tells the listeners (engineers' sessions to the device) that the device's tunnel is gone. */
  removed(deviceId: string, why: DetachReason): void {
    this.removals.emit('removed', deviceId, why);
  }

  onRemoved(listener: (deviceId: string, why: DetachReason) => void): void {
    this.removals.on('removed', listener);
  }

  /**
   * A BIRTH announced key `publicKey` (or none): a live peer with another key is replaced on the
   * same gateway, or removed when the device no longer has a key or the key is taken there.
   */
  async keyAnnounced(
    device: { id: string; scopeId: string; tunnelIp: string },
    publicKey: string | null,
  ): Promise<void> {
    const current = await this.peers.devicePeer(device.id);
    if (!current || current.publicKey === publicKey) return;
    if (publicKey === null) return this.detach(device.id, undefined, 'disconnected');
    try {
      const { changes } = await this.peers.upsertDevicePeer(current.gatewayId, {
        deviceId: device.id,
        scopeId: device.scopeId,
        publicKey,
        tunnelIp: device.tunnelIp,
      });
      this.sync.publish(changes);
      this.logger.log({ deviceId: device.id }, 'device announced a new WireGuard key; its peer was replaced');
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'ENTRY_EXISTS') throw err;
      this.logger.warn(
        { deviceId: device.id },
        "device's new key is used by another peer of its gateway; peer removed",
      );
      await this.detach(device.id);
    }
  }
}
