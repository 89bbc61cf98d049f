// Starts one VPN client: state dir (settings, WireGuard keys, certificate), the tunnel left over by
// a crashed run removed, the connection manager, and the local HTTPS API. Used by main.ts and by
// tests that run the client in-process.
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';

import { ClientTunnel } from './client-tunnel';
import { CloudClient } from './cloud-client';
import type { ClientConfig } from './config';
import { ConnectionManager } from './connection-manager';
import { LocalApiServer } from './http-server';
import { SettingsStore } from './settings';
import { loadCertificateFiles, loadOrCreateCertificate } from './tls';
import { Logger, loadOrCreateKeys, withoutCredentials } from '@app/edge';

export interface RunningClient {
  /** `https://127.0.0.1:<port>` (the host of --listen). */
  url: string;
  port: number;
  /** Of the certificate being served. */
  fingerprint256: string;
  publicKey: string;
  manager: ConnectionManager;
  /** Tears the tunnel down (ending the session at the cloud) and stops serving. */
  close(): Promise<void>;
}

export async function startVpnClient(config: ClientConfig, logger: Logger): Promise<RunningClient> {
  const stateDir = resolve(config.stateDir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const settings = await SettingsStore.open(stateDir);
  const keys = await loadOrCreateKeys(stateDir, logger);
  const tunnel = new ClientTunnel(
    config.interfaceName,
    config.netns,
    keys,
    logger.child({ interface: config.interfaceName }),
  );
  // A crashed run may have left its interface: start from a truthful "idle".
  await tunnel.remove();
  const tls =
    config.tls !== undefined
      ? await loadCertificateFiles(config.tls)
      : await loadOrCreateCertificate(stateDir, logger);
  const manager = new ConnectionManager({
    cloud: new CloudClient(config.apiUrl),
    tunnel,
    publicKey: keys.publicKey,
    settings: () => settings.get(),
    logger,
  });
  const server = new LocalApiServer({
    manager,
    settings,
    allowedOrigins: config.allowedOrigins,
    tls,
    logger,
  });
  const { url, port } = await server.listen(config.listen);
  logger.info(
    {
      url,
      fingerprint256: tls.fingerprint256,
      api: withoutCredentials(config.apiUrl),
      interface: config.interfaceName,
      netns: config.netns,
      allowedOrigins: config.allowedOrigins,
    },
    'vpn-client listening',
  );
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    fingerprint256: tls.fingerprint256,
    publicKey: keys.publicKey,
    manager,
    close: () => {
      // The manager first, so WebSocket clients still see the tunnel go down.
      closing ??= manager.close().finally(() => server.close());
      return closing;
    },
  };
}
