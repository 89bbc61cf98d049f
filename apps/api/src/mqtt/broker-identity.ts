/**
 * Who an MQTT connection to the embedded broker is. The cloud's own client uses a
 * per-process internal credential; devices use the credentials issued through the
 * REST API (checked by whatever the devices domain registers).
 */
export type BrokerIdentity =
  { kind: 'cloud' } | { kind: 'device'; deviceId: string; account: string; clientId: string };

export type DeviceAuthenticator = (
  mqttClientId: string,
  username: string,
  password: Buffer,
) => Promise<BrokerIdentity | null>;

export const CLOUD_USERNAME = '$cloud';
