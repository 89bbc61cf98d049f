// @app/edge: what the processes at the edge share (the device agent, the VPN gateway, the
// engineer's client): options from argv/env/file, JSON logs, running system tools without a
// shell, the WireGuard key pair kept in a state dir, one WireGuard tunnel.
export * from './config-sources';
export * from './logger';
export * from './system-command';
export * from './wireguard-key-store';
export * from './wireguard-tunnel';
export * from './wireguard-uapi';
