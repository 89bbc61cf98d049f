import type { AgentConfig } from '../config';
import { SimulatedDriver } from './simulated.driver';
import { VpnDriver } from './vpn-driver';
import { WireguardDriver } from './wireguard.driver';
import { Logger } from '@app/edge';

export async function createDriver(config: AgentConfig, logger: Logger): Promise<VpnDriver> {
  switch (config.driver) {
    case 'simulated':
      return new SimulatedDriver(config.simulated, config.mqtt.clientId);
    case 'wireguard':
      return WireguardDriver.create(config.wireguard, logger);
  }
}
