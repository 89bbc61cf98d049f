/**
 * The public fleet event: what the SSE stream (GET /v1/{scopeId}/vpn/events) and webhooks send.
 * One per stored device_event row of a known type; the mapping is documented in docs/events.md.
 */
export const FLEET_EVENT_TYPES = [
  'vpn.connected',
  'vpn.disconnected',
  'vpn.error',
  'device.connection',
] as const;
export type FleetEventType = (typeof FLEET_EVENT_TYPES)[number];

export interface VpnEventData {
  connected: boolean;
  ipAddress: string;
  /** idle | connecting | connected | disconnecting | error */
  status: string;
  /** IXON-style three-digit code; 010 and above are errors. */
  statusCode: string;
}

export interface ConnectionEventData {
  /** The device's MQTT link state after the change. */
  deviceConnection: 'CONNECTED' | 'DISCONNECTED' | 'MISSING';
  /** The Kura lifecycle message that caused it. */
  cause: 'BIRTH' | 'DC' | 'LWT';
}

export interface FleetEvent {
  /** device_event.id as a decimal string: grows with each event, the SSE `id:` and resume point. */
  id: string;
  type: FleetEventType;
  scopeId: string;
  deviceId: string;
  clientId: string;
  /** When the cloud received the change (ISO 8601). */
  occurredOn: string;
  data: VpnEventData | ConnectionEventData;
}

export function isFleetEventType(t: string): t is FleetEventType {
  return (FLEET_EVENT_TYPES as readonly string[]).includes(t);
}

/**
 * SQL expression giving the public type of device_event row `e` (NULL: not a public event).
 * A VPN status change is an error when the status is `error` or the code is 010 or above,
 * otherwise connected or disconnected by its `connected` flag.
 */
export const PUBLIC_TYPE_SQL = (e: string): string => `CASE
    WHEN ${e}.type = 'VPN_STATUS' THEN
      CASE WHEN ${e}.details->>'status' = 'error' OR ${e}.details->>'statusCode' >= '010' THEN 'vpn.error'
           WHEN (${e}.details->>'connected')::boolean THEN 'vpn.connected'
           ELSE 'vpn.disconnected' END
    WHEN ${e}.type IN ('BIRTH', 'DC', 'LWT') THEN 'device.connection'
  END`;

const CONNECTION_OF = { BIRTH: 'CONNECTED', DC: 'DISCONNECTED', LWT: 'MISSING' } as const;

/** The public data of a stored event, by its stored type and details. */
export function fleetEventData(
  storedType: string,
  details: Record<string, unknown>,
): VpnEventData | ConnectionEventData {
  if (storedType === 'BIRTH' || storedType === 'DC' || storedType === 'LWT') {
    return { deviceConnection: CONNECTION_OF[storedType], cause: storedType };
  }
  return {
    connected: details.connected === true,
    ipAddress: typeof details.ipAddress === 'string' ? details.ipAddress : '0.0.0.0',
    status: typeof details.status === 'string' ? details.status : 'idle',
    statusCode: typeof details.statusCode === 'string' ? details.statusCode : '000',
  };
}
