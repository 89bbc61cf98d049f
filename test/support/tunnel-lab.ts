/**
 * The setting of the real-tunnel e2e tests: the API (embedded broker) with tunnel ranges in
 * 100.64.0.0/10, two tenants (A and B, children of root), one real vpn-gateway process in the
 * root account (so it serves both) in its own namespace on the underlay, and devices run by the
 * real agent with the WireGuard driver, each in a namespace of its own. stop() removes all of it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { Underlay } from './netns';
import { eventually, holds } from './eventually';
import { bearer, login } from './http';
import { createTenant, suffix, type Tenant } from './factories';
import { createDeviceWithCredentials, type DeviceBody, type DeviceWithCredentials } from './device-factories';
import {
  type ApiProcess,
  type LoggedProcess,
  ProcessGroup,
  startApiProcess,
  startDeviceAgent,
  startGatewayProcess,
} from './processes';

export const GW_UNDERLAY = '198.18.0.1';
export const GW_PORT = 51820;

export interface TunnelDevice extends DeviceWithCredentials {
  ns: string;
  ifname: string;
  agent: LoggedProcess;
}

export class TunnelLab {
  readonly procs = new ProcessGroup();
  net!: Underlay;
  api!: ApiProcess;
  rootToken!: string;
  tenantA!: Tenant;
  tenantB!: Tenant;
  gatewayId!: string;
  gatewayKey!: string;
  gatewayNs!: string;
  gatewayIf!: string;
  gateway!: LoggedProcess;
  private gatewayArgs!: Parameters<typeof startGatewayProcess>[0];
  private hosts = 10;

  /**
   * Starts everything. Needs root and the tunnel tools: suites using it choose `describe` or
   * `describe.skip` with describeWhen(…, TUNNEL_NEEDS) when they load.
   */
  static async start(): Promise<TunnelLab> {
    const lab = new TunnelLab();
    try {
      await lab.setUp();
    } catch (err) {
      await lab.stop();
      throw err;
    }
    return lab;
  }

  private async setUp(): Promise<void> {
    this.net = await Underlay.create();
    this.api = this.procs.api(
      await startApiProcess({
        VPN_SUPERNET: '100.64.0.0/12',
        VPN_SUBNET_PREFIX: '24',
        VPN_CLIENT_POOL: '100.96.0.0/16',
        VPN_KEEPALIVE: '1',
        VPN_SESSION_PING_INTERVAL_SECONDS: '2',
        VPN_SWEEP_INTERVAL_MS: '500',
      }),
    );
    this.rootToken = await login(this.api);
    this.tenantA = await createTenant(this.api, this.rootToken);
    this.tenantB = await createTenant(this.api, this.rootToken);

    this.gatewayNs = await this.net.addHost('gw', GW_UNDERLAY);
    this.gatewayIf = this.net.name('wgg');
    this.net.track(this.gatewayNs, this.gatewayIf);
    const name = `hub-${suffix()}`;
    const created = await request(this.api.url)
      .post('/v1/_/gateways')
      .set(bearer(this.rootToken))
      .send({ name, endpoint: `${GW_UNDERLAY}:${GW_PORT}` });
    if (created.status !== 201) throw new Error(`create gateway: ${created.status} ${created.text}`);
    this.gatewayId = created.body.id as string;
    const creds = await request(this.api.url)
      .post(`/v1/_/gateways/${this.gatewayId}/credentials`)
      .set(bearer(this.rootToken));
    this.gatewayArgs = {
      broker: this.api.mqttUrl,
      account: creds.body.account as string,
      clientId: name,
      username: creds.body.username as string,
      password: creds.body.password as string,
      listenPort: GW_PORT,
      interfaceName: this.gatewayIf,
      netns: this.gatewayNs,
      stateDir: join(this.net.workDir, 'gateway'),
      args: ['--stats-interval-ms', '1000', '--keepalive', '1', '--reconnect-period-ms', '200'],
    };
    await this.startGateway();
    const gateway = await eventually(
      async () =>
        holds(
          'the gateway to be CONNECTED with its key',
          await (
            await request(this.api.url).get(`/v1/_/gateways/${this.gatewayId}`).set(bearer(this.rootToken))
          ).body,
          (g: { connection: string; publicKey: string | null }) =>
            g.connection === 'CONNECTED' && !!g.publicKey,
        ),
      15_000,
      100,
    );
    this.gatewayKey = gateway.publicKey as string;
  }

  /** (Re)starts the gateway process on its state dir. */
  async startGateway(): Promise<LoggedProcess> {
    this.gateway = this.procs.agent(await startGatewayProcess(this.gatewayArgs));
    return this.gateway;
  }

  /** A device of the tenant with the real agent and the WireGuard driver in a namespace of its own. */
  async device(tenant: Tenant, tag: string): Promise<TunnelDevice> {
    const token = tenant.admin.token;
    const device = await createDeviceWithCredentials(this.api, token, '_', {
      clientId: `dev-${tag}-${suffix()}`,
    });
    const ns = await this.net.addHost(tag, `198.18.0.${++this.hosts}`);
    const ifname = this.net.name(`w${tag}`);
    this.net.track(ns, ifname);
    const stateDir = join(this.net.workDir, tag);
    mkdirSync(stateDir);
    const agent = this.procs.agent(
      await startDeviceAgent(this.api, device, [
        '--driver',
        'wireguard',
        '--netns',
        ns,
        '--interface',
        ifname,
        '--state-dir',
        stateDir,
        '--handshake-timeout-ms',
        '20000',
      ]),
    );
    return { ...device, ns, ifname, agent };
  }

  /** A namespace for an engineer's computer on the underlay. */
  engineer(tag = 'eng'): Promise<string> {
    return this.net.addHost(tag, `198.18.0.${++this.hosts}`);
  }

  /** `_connect` (or `_disconnect`) of a device as the tenant's admin. */
  command(tenant: Tenant, d: DeviceBody, path: '_connect' | '_disconnect' = '_connect') {
    return request(this.api.url)
      .post(`/v1/_/devices/${d.id}/vpn/${path}?timeout=30000`)
      .set(bearer(tenant.admin.token));
  }

  /** The gateway's address in the device's /24 subnet. */
  gatewayAddressOf(d: DeviceBody): string {
    return `${d.tunnelAddress.split('.').slice(0, 3).join('.')}.1`;
  }

  async stop(): Promise<void> {
    // Agents and the gateway first (a clean stop removes their interfaces), then the namespaces.
    await this.procs.stopAll();
    await this.net?.destroy();
  }
}
