import { Injectable } from '@nestjs/common';

/** The two kinds of edge clients that hold MQTT credentials issued by the cloud. */
export type EdgeKind = 'device' | 'gateway';

interface EdgeRef {
  kind: EdgeKind;
  /** The device's or gateway's id (uuid). */
  id: string;
  /** The name of the account it belongs to. */
  account: string;
  /** The device's clientId or the gateway's name: its MQTT client id is `{account}:{clientId}`. */
  clientId: string;
}

/**
 * A change to an edge client's MQTT credentials, announced after the database holds it.
 * - `issued`: new credentials (first issue or rotation). The password is the plaintext shown once
 *   to the caller; it lives only in memory, for brokers that keep their own password hashes.
 * - `disabled` / `enabled`: the device's status changed; a disabled one may not connect.
 * - `deleted`: the device or gateway is gone and must never connect again.
 */
export type CredentialChange =
  | (EdgeRef & { type: 'issued'; username: string; password: string })
  | (EdgeRef & { type: 'disabled' | 'enabled' | 'deleted' });

export type CredentialListener = (change: CredentialChange) => void | Promise<void>;

/**
 * Where the devices and gateways domains announce credential changes, and where the broker side
 * (the embedded broker, or the adapter of an external broker) listens. The domains never call a
 * broker themselves, so the same announcement serves every broker kind.
 *
 * Listeners run one after the other and are awaited: when one throws, `announce` rejects with
 * its error, and the caller learns that the broker did not take the change.
 */
@Injectable()
export class BrokerCredentials {
  private readonly listeners: CredentialListener[] = [];

  onChange(listener: CredentialListener): void {
    this.listeners.push(listener);
  }

  async announce(change: CredentialChange): Promise<void> {
    for (const listener of this.listeners) await listener(change);
  }
}
