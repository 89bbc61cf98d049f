// The fleet simulator: N simulated devices in one process, for load tests of the cloud.
import { DeviceAgent } from './device-agent';
import { DeviceCredentials, loadCredentialsFile, saveCredentialsFile } from './device-credentials';
import { SimulatedDriver } from './drivers/simulated.driver';
import { provisionDevices } from './provision';
import type { FleetConfig } from './simulate-config';
import { ConfigError, Logger, createLogger } from '@app/edge';

export interface FleetSummary {
  count: number;
  connected: number;
  notConnected: number;
  elapsedMs: number;
  devicesPerSecond: number;
}

const STOP_CHUNK = 500;

export class FleetSimulator {
  private readonly agents: DeviceAgent[] = [];
  private stopping = false;

  constructor(
    private readonly config: FleetConfig,
    private readonly logger: Logger,
  ) {}

  /** Starts the devices in batches and resolves with a summary once all are up (or the wait ran out). */
  async run(): Promise<FleetSummary> {
    const credentials = await this.credentials();
    const agentLogger = createLogger(this.config.agentLogLevel);
    const started = Date.now();
    const { batchSize } = this.config;
    for (let offset = 0; offset < credentials.length && !this.stopping; offset += batchSize) {
      const batch = credentials.slice(offset, offset + batchSize).map((c) => this.startAgent(c, agentLogger));
      const up = await waitAll(
        batch.map((a) => a.whenBorn()),
        this.config.batchTimeoutMs,
      );
      this.logger.info(
        { started: offset + batch.length, count: credentials.length, batchUp: up, batchSize: batch.length },
        'batch started',
      );
    }
    await waitAll(
      this.agents.map((a) => a.whenBorn()),
      this.config.readyTimeoutMs,
    );
    const connected = this.agents.filter((a) => a.birthCount > 0).length;
    const elapsedMs = Date.now() - started;
    return {
      count: credentials.length,
      connected,
      notConnected: credentials.length - connected,
      elapsedMs,
      devicesPerSecond: Math.round((connected / Math.max(elapsedMs, 1)) * 1000),
    };
  }

  /** Stops every device cleanly (DC, no LWT), a chunk at a time so the broker is not flooded. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (let i = 0; i < this.agents.length; i += STOP_CHUNK) {
      await Promise.all(this.agents.slice(i, i + STOP_CHUNK).map((a) => a.stop()));
    }
  }

  private startAgent(creds: DeviceCredentials, logger: Logger): DeviceAgent {
    const { link, simulated, reconnectJitterMs } = this.config;
    const agent = new DeviceAgent({
      mqtt: {
        ...link,
        clientId: creds.clientId,
        username: creds.username === '' ? undefined : creds.username,
        password: creds.password === '' ? undefined : creds.password,
        reconnectPeriodMs: link.reconnectPeriodMs + Math.floor(Math.random() * reconnectJitterMs),
      },
      device: { displayName: creds.clientId, modelId: 'vpn-agent-simulated', serialNumber: creds.clientId },
      driver: new SimulatedDriver(simulated, creds.clientId),
      logger: logger.child({ clientId: creds.clientId }),
      stopGraceMs: 1000,
    });
    this.agents.push(agent);
    agent.start();
    return agent;
  }

  private async credentials(): Promise<DeviceCredentials[]> {
    const { count, credentials: source, clientIdPrefix } = this.config;
    const clientIds = Array.from(
      { length: count },
      (_v, i) => `${clientIdPrefix}${String(i).padStart(5, '0')}`,
    );
    switch (source.kind) {
      case 'file': {
        const all = await loadCredentialsFile(source.path);
        if (all.length < count) {
          throw new ConfigError(
            `--credentials ${source.path} has ${all.length} devices, --count asks for ${count}`,
          );
        }
        return all.slice(0, count);
      }
      case 'anonymous':
        return clientIds.map((clientId) => ({ clientId, username: '', password: '' }));
      case 'api': {
        const started = Date.now();
        const creds = await provisionDevices({
          apiUrl: source.apiUrl,
          token: source.token,
          apiKey: source.apiKey,
          clientIds,
          concurrency: source.concurrency,
          onProgress: (done) => {
            if (done % 1000 === 0) this.logger.info({ done, count }, 'provisioning');
          },
        });
        this.logger.info({ count, ms: Date.now() - started }, 'devices provisioned');
        const foreign = creds.find((c) => c.account !== undefined && c.account !== this.config.link.account);
        if (foreign !== undefined) {
          // Topics carry the account name: with the wrong one every device would be refused by the ACL.
          throw new ConfigError(
            `the API put the devices in account "${foreign.account}", but --account is "${this.config.link.account}"`,
          );
        }
        if (source.saveTo !== undefined) await saveCredentialsFile(source.saveTo, creds);
        return creds;
      }
    }
  }
}

/** True when all settled in time; never rejects (whenBorn() only resolves). */
async function waitAll(promises: Promise<void>[], timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const result = await Promise.race([Promise.all(promises).then(() => true), timeout]);
  clearTimeout(timer);
  return result;
}
