// Metric names of the device protocol (docs/protocol.md), shared by the cloud and the agent so neither
// side can misspell one.
export const Metrics = {
  // Kura request/response convention
  REQUEST_ID: 'request.id',
  REQUESTER_CLIENT_ID: 'requester.client.id',
  RESPONSE_CODE: 'response.code',
  RESPONSE_EXCEPTION_MESSAGE: 'response.exception.message',
  // VPN status report
  VPN_CONNECTED: 'vpn.connected',
  VPN_IP_ADDRESS: 'vpn.ip_address',
  VPN_STATUS: 'vpn.status',
  VPN_STATUS_CODE: 'vpn.status_code',
  VPN_BOOT_ID: 'vpn.boot_id',
  VPN_SEQ: 'vpn.seq',
  // BIRTH (Kura device profile, plus the WireGuard public key of an agent or a gateway)
  VPN_PUBLIC_KEY: 'vpn.public_key',
  /** A gateway's WireGuard UDP port (INT32), announced in its BIRTH. */
  VPN_LISTEN_PORT: 'vpn.listen_port',
  // Gateway replies: the peer-map serial the gateway holds after the request (INT64)
  GATEWAY_SERIAL: 'gateway.serial',
  DISPLAY_NAME: 'display_name',
  MODEL_ID: 'model_id',
  SERIAL_NUMBER: 'serial_number',
  FIRMWARE_VERSION: 'firmware_version',
  CONNECTION_IP: 'connection_ip',
  APPLICATION_IDS: 'application_ids',
  UPTIME: 'uptime',
} as const;

export type MetricName = (typeof Metrics)[keyof typeof Metrics];
