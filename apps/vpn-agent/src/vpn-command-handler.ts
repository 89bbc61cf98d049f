import {
  DISCONNECTED_IP,
  parseVpnProfile,
  StatusCodes,
  VpnProfile,
  VpnProfileError,
  VpnStatusReport,
} from '@app/protocol';

import { VpnDriver, VpnDriverError } from './drivers/vpn-driver';
import { VpnState, VpnStatusTracker } from './vpn-status-tracker';
import { Logger, errorFields } from '@app/edge';

export const COMMANDS = ['connect', 'disconnect', 'status'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** The reply to one command; `code` becomes `response.code`. */
export interface CommandOutcome {
  code: 200 | 400 | 404 | 500;
  exceptionMessage?: string;
  status: VpnStatusReport;
}

/**
 * What each VPN command does to the tunnel and to the reported status, without MQTT: the agent
 * feeds it one command at a time and publishes what it reports.
 */
export class VpnCommandHandler {
  /** The profile of the tunnel that is up, to make a repeated connect a no-op. */
  private profile: VpnProfile | undefined;

  constructor(
    private readonly driver: VpnDriver,
    private readonly tracker: VpnStatusTracker,
    private readonly publishStatus: (report: VpnStatusReport) => void,
    private readonly logger: Logger,
  ) {}

  async handle(command: string, body: Buffer | undefined): Promise<CommandOutcome> {
    switch (command) {
      case 'connect':
        return this.connect(body);
      case 'disconnect':
        return this.disconnect();
      case 'status':
        return this.ok();
      default:
        return { code: 404, exceptionMessage: `unknown command "${command}"`, status: this.tracker.current };
    }
  }

  /** Takes the tunnel down on agent shutdown; errors are logged, not thrown, so shutdown goes on. */
  async shutdown(): Promise<void> {
    if (!this.driver.status().up && this.tracker.current.status === 'idle') return;
    try {
      await this.driver.down();
      this.profile = undefined;
      this.set({
        connected: false,
        ipAddress: DISCONNECTED_IP,
        status: 'idle',
        statusCode: StatusCodes.DONE,
      });
    } catch (err) {
      this.logger.error({ ...errorFields(err) }, 'tunnel teardown on shutdown failed');
    }
  }

  private async connect(body: Buffer | undefined): Promise<CommandOutcome> {
    let profile: VpnProfile;
    try {
      if (body === undefined || body.length === 0)
        throw new VpnProfileError('connect needs a VPN profile as body');
      profile = parseVpnProfile(body);
    } catch (err) {
      if (!(err instanceof VpnProfileError)) throw err;
      this.logger.warn({ err: err.message }, 'connect refused: invalid VPN profile');
      return { code: 400, exceptionMessage: err.message, status: this.tracker.current };
    }
    if (this.driver.status().up && this.profile !== undefined && sameProfile(this.profile, profile)) {
      return this.ok();
    }
    this.profile = undefined;
    this.set({
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'connecting',
      statusCode: StatusCodes.PENDING,
    });
    try {
      const { ipAddress } = await this.driver.up(profile);
      this.profile = profile;
      this.set({ connected: true, ipAddress, status: 'connected', statusCode: StatusCodes.ACTIVE });
      return this.ok();
    } catch (err) {
      return this.failed('connect', err);
    }
  }

  private async disconnect(): Promise<CommandOutcome> {
    if (!this.driver.status().up && this.tracker.current.status === 'idle') return this.ok();
    const { connected, ipAddress } = this.tracker.current;
    this.set({ connected, ipAddress, status: 'disconnecting', statusCode: StatusCodes.PENDING });
    try {
      await this.driver.down();
      this.profile = undefined;
      this.set({
        connected: false,
        ipAddress: DISCONNECTED_IP,
        status: 'idle',
        statusCode: StatusCodes.DONE,
      });
      return this.ok();
    } catch (err) {
      return this.failed('disconnect', err);
    }
  }

  private failed(command: CommandName, err: unknown): CommandOutcome {
    const fallback = command === 'disconnect' ? StatusCodes.TEARDOWN_FAILED : StatusCodes.FAILED;
    const statusCode = err instanceof VpnDriverError ? err.statusCode : fallback;
    const message = err instanceof Error ? err.message : String(err);
    this.logger.error({ command, statusCode, ...errorFields(err) }, `${command} failed`);
    // Report what the driver actually has: a failed teardown may leave the tunnel up.
    const tunnel = this.driver.status();
    if (!tunnel.up) this.profile = undefined;
    this.set({ connected: tunnel.up, ipAddress: tunnel.ipAddress, status: 'error', statusCode });
    return { code: 500, exceptionMessage: message, status: this.tracker.current };
  }

  private ok(): CommandOutcome {
    return { code: 200, status: this.tracker.current };
  }

  private set(state: VpnState): void {
    const report = this.tracker.update(state);
    if (report !== undefined) this.publishStatus(report);
  }
}

function sameProfile(a: VpnProfile, b: VpnProfile): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Key order and list order do not make two profiles different tunnels. */
function canonical(p: VpnProfile): unknown[] {
  return [
    p.type,
    p.tunnelAddress,
    p.serverEndpoint,
    p.serverPublicKey,
    [...p.allowedIps].sort(),
    [...p.dns].sort(),
    p.keepalive,
  ];
}
