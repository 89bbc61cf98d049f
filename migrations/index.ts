import { Init1763900000000 } from './1763900000000-Init';
import { DevicesAndVpn1763910000000 } from './1763910000000-DevicesAndVpn';
import { Gateways1795508699795 } from './1795508699795-Gateways';
import { Sessions1795510562379 } from './1795510562379-Sessions';
import { Hardening1795513469308 } from './1795513469308-Hardening';
import { FleetStatus1795600100000 } from './1795600100000-FleetStatus';
import { EventFeed1795600200000 } from './1795600200000-EventFeed';
import { Webhooks1795600300000 } from './1795600300000-Webhooks';
import { FleetDeviceRemovals1795600400000 } from './1795600400000-FleetDeviceRemovals';
import { InstanceLease1795600500000 } from './1795600500000-InstanceLease';
import { TunnelAddressHint1795600600000 } from './1795600600000-TunnelAddressHint';

/**
 * Every migration, in order. A file generated with `npm run migration:generate`
 * must be added here; the drift test fails while it is not.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- TypeORM's own type for migration classes
export const MIGRATIONS: Function[] = [
  Init1763900000000,
  DevicesAndVpn1763910000000,
  Gateways1795508699795,
  Sessions1795510562379,
  Hardening1795513469308,
  FleetStatus1795600100000,
  EventFeed1795600200000,
  Webhooks1795600300000,
  FleetDeviceRemovals1795600400000,
  InstanceLease1795600500000,
  TunnelAddressHint1795600600000,
];
