import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../apps/api/src/database/data-source';
import { createTestDatabase, type TestDatabase } from './database';

/**
 * A migrated database of its own for one repository test file, and small row factories that
 * write straight to it: repository tests run without the API, so nothing here goes through HTTP.
 */
export interface RepositoryDb {
  ds: DataSource;
  /** A root account, or a child of `parent`, with the next free /16 of 10.0.0.0/8 unless `vpnSubnet` is given. */
  account(opts?: { parent?: AccountRow; vpnSubnet?: string; name?: string }): Promise<AccountRow>;
  /** A device of the account with the given (or the next) tunnel address of its subnet. */
  device(
    account: AccountRow,
    opts?: { clientId?: string; tunnelIp?: string; connectionStatus?: string; status?: string },
  ): Promise<DeviceRow>;
  close(): Promise<void>;
}

export interface AccountRow {
  id: string;
  name: string;
  path: string;
  vpnSubnet: string;
}

export interface DeviceRow {
  id: string;
  scopeId: string;
  clientId: string;
  tunnelIp: string;
}

export const suffix = (): string => randomBytes(4).toString('hex');

export async function createRepositoryDb(): Promise<RepositoryDb> {
  const db: TestDatabase = await createTestDatabase();
  const ds = new DataSource(dataSourceOptions(db.url));
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  let octet = 0;
  const hosts = new Map<string, number>();
  return {
    ds,
    async account(opts = {}) {
      const id = randomUUID();
      const name = opts.name ?? `acct-${suffix()}`;
      const path = `${opts.parent?.path ?? '/'}${id}/`;
      const vpnSubnet = opts.vpnSubnet ?? `10.${++octet}.0.0/16`;
      await ds.query(
        `INSERT INTO account (id, scope_id, optlock, name, path, vpn_subnet) VALUES ($1, $2, 1, $3, $4, $5)`,
        [id, opts.parent?.id ?? null, name, path, vpnSubnet],
      );
      return { id, name, path, vpnSubnet };
    },
    async device(account, opts = {}) {
      const clientId = opts.clientId ?? `dev-${suffix()}`;
      const next = (hosts.get(account.id) ?? 1) + 1;
      hosts.set(account.id, next);
      const base = account.vpnSubnet.split('/')[0].split('.').slice(0, 3).join('.');
      const tunnelIp = opts.tunnelIp ?? `${base}.${next}`;
      const [{ id }]: Array<{ id: string }> = await ds.query(
        `INSERT INTO device (scope_id, optlock, client_id, tunnel_ip, connection_status, status)
         VALUES ($1, 1, $2, $3, $4, $5) RETURNING id`,
        [
          account.id,
          clientId,
          tunnelIp,
          opts.connectionStatus ?? 'NEVER_CONNECTED',
          opts.status ?? 'ENABLED',
        ],
      );
      return { id, scopeId: account.id, clientId, tunnelIp };
    },
    async close() {
      await ds.destroy();
      await db.drop();
    },
  };
}
