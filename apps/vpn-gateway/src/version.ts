/** Announced in BIRTH as `firmware_version`; bump with releases of the gateway. */
export const GATEWAY_VERSION = '0.1.0';
