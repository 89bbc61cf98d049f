import { Injectable } from '@nestjs/common';
import type { DeviceAuthenticator, EdgeIdentity } from './broker-identity';
import type { EdgeKind } from './broker-credentials';

/** A device or gateway that holds MQTT credentials, as the database knows it. */
export interface EdgeCredentialRecord {
  kind: EdgeKind;
  id: string;
  account: string;
  /** The device's clientId or the gateway's name. */
  clientId: string;
  /** `{account}:{clientId}`. */
  username: string;
  /** False for a disabled device: its broker client must refuse it. */
  enabled: boolean;
}

/** How a domain lists the edge clients of its kind that hold credentials. */
export interface EdgeInventory {
  kind: EdgeKind;
  list(): Promise<EdgeCredentialRecord[]>;
  /** Whether it may connect now; null when it no longer exists. */
  isEnabled(id: string): Promise<boolean | null>;
}

/**
 * Where the devices and gateways domains register how their credentials are checked (tried in
 * order, by the embedded broker on every CONNECT and by EMQX's HTTP auth endpoint) and how to list
 * who holds credentials (for an external broker's start-up reconciliation). The mqtt module never
 * reads their tables itself.
 */
@Injectable()
export class EdgeCredentials {
  private readonly authenticators: DeviceAuthenticator[] = [];
  private readonly inventories: EdgeInventory[] = [];

  addAuthenticator(fn: DeviceAuthenticator): void {
    this.authenticators.push(fn);
  }

  addInventory(fn: EdgeInventory): void {
    this.inventories.push(fn);
  }

  /** The device or gateway these credentials belong to, or null. */
  async authenticate(mqttClientId: string, username: string, password: Buffer): Promise<EdgeIdentity | null> {
    for (const authenticate of this.authenticators) {
      const identity = await authenticate(mqttClientId, username, password);
      if (identity && identity.kind !== 'cloud') return identity;
    }
    return null;
  }

  async list(): Promise<EdgeCredentialRecord[]> {
    const lists = await Promise.all(this.inventories.map((inventory) => inventory.list()));
    return lists.flat();
  }

  async isEnabled(kind: EdgeKind, id: string): Promise<boolean | null> {
    const inventory = this.inventories.find((i) => i.kind === kind);
    return inventory ? inventory.isEnabled(id) : null;
  }
}
