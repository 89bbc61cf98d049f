import { DISCONNECTED_IP, StatusCodes, VpnProfile } from '@app/protocol';

import type { SimulatedDriverConfig } from '../config';
import { SimulatedDriver } from './simulated.driver';
import { VpnDriverError } from './vpn-driver';

const profile: VpnProfile = {
  type: 'wireguard',
  tunnelAddress: '10.200.0.7/16',
  serverEndpoint: 'vpn.example.com:51820',
  serverPublicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
  allowedIps: ['10.200.0.0/16'],
  dns: [],
  keepalive: 25,
};

function driver(config: Partial<SimulatedDriverConfig> = {}): SimulatedDriver {
  return new SimulatedDriver(
    { connectDelayMs: 0, disconnectDelayMs: 0, failMode: 'none', announceKey: false, ...config },
    'dev-1',
  );
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof VpnDriverError) return err.statusCode;
    throw err;
  }
  throw new Error('expected a VpnDriverError');
}

describe('SimulatedDriver', () => {
  it("should bring the profile's tunnel address up and take it down", async () => {
    const d = driver();
    expect(d.status()).toEqual({ up: false, ipAddress: DISCONNECTED_IP });
    await expect(d.up(profile)).resolves.toEqual({ ipAddress: '10.200.0.7' });
    expect(d.status()).toEqual({ up: true, ipAddress: '10.200.0.7' });
    await d.down();
    expect(d.status()).toEqual({ up: false, ipAddress: DISCONNECTED_IP });
    await expect(d.down()).resolves.toBeUndefined();
  });

  it('should take the configured delay to come up', async () => {
    const d = driver({ connectDelayMs: 120 });
    const started = Date.now();
    await d.up(profile);
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('should announce no key by default, so the device needs no gateway', () => {
    expect(driver().publicKey()).toBeUndefined();
  });

  it('should announce a stable, well-formed public key per client id with announceKey', () => {
    const keyed = (clientId = 'dev-1') =>
      new SimulatedDriver(
        { connectDelayMs: 0, disconnectDelayMs: 0, failMode: 'none', announceKey: true },
        clientId,
      ).publicKey();
    expect(keyed()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(keyed()).toBe(keyed());
    expect(keyed('x')).not.toBe(keyed());
  });

  it('should fail a connect with the handshake step code in fail mode connect', async () => {
    const d = driver({ failMode: 'connect' });
    expect(await codeOf(d.up(profile))).toBe(StatusCodes.HANDSHAKE_TIMEOUT);
    expect(d.status().up).toBe(false);
  });

  it('should fail a disconnect with the teardown code and leave the tunnel up in fail mode disconnect', async () => {
    const d = driver({ failMode: 'disconnect' });
    await d.up(profile);
    expect(await codeOf(d.down())).toBe(StatusCodes.TEARDOWN_FAILED);
    expect(d.status()).toEqual({ up: true, ipAddress: '10.200.0.7' });
  });

  it('should never answer a connect in fail mode timeout until down() aborts it', async () => {
    const d = driver({ failMode: 'timeout' });
    const up = d.up(profile);
    const settled = await Promise.race([
      up.then(
        () => 'settled',
        () => 'settled',
      ),
      sleep(100).then(() => 'pending'),
    ]);
    expect(settled).toBe('pending');
    await d.down();
    expect(await codeOf(up)).toBe(StatusCodes.FAILED);
    expect(d.status().up).toBe(false);
  });

  it('should abort a slow connect when down() is called meanwhile', async () => {
    const d = driver({ connectDelayMs: 10_000 });
    const up = d.up(profile);
    await d.down();
    expect(await codeOf(up)).toBe(StatusCodes.FAILED);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
