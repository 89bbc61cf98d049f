/**
 * Who an MQTT connection to the embedded broker is. The cloud's own client uses a
 * per-process internal credential; devices and gateways use the credentials issued through
 * the REST API (checked by the authenticators their domains register).
 */
export type BrokerIdentity =
  | { kind: 'cloud' }
  | { kind: 'device'; deviceId: string; account: string; clientId: string }
  | { kind: 'gateway'; gatewayId: string; account: string; clientId: string };

/** A device or gateway identity: the kinds the topic ACL applies to. */
export type EdgeIdentity = Exclude<BrokerIdentity, { kind: 'cloud' }>;

export const identityId = (id: EdgeIdentity): string => (id.kind === 'device' ? id.deviceId : id.gatewayId);

export type DeviceAuthenticator = (
  mqttClientId: string,
  username: string,
  password: Buffer,
) => Promise<BrokerIdentity | null>;

export const CLOUD_USERNAME = '$cloud';

/**
 * The MQTT client ids a device or gateway may connect with: `{account}:{clientId}` (Kapua's full
 * client id, unique across tenants, so no tenant can ever hold another's session) or the plain
 * clientId (Kura's default; unique in its account only, so two tenants' `gw-1` cannot be online
 * at once on one broker — the full form avoids that).
 */
export function isOwnMqttClientId(mqttClientId: string, account: string, clientId: string): boolean {
  return mqttClientId === clientId || mqttClientId === `${account}:${clientId}`;
}
