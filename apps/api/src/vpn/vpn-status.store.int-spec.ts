import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { VpnStatusReport } from '@app/protocol';
import { dataSourceOptions } from '../database/data-source';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/database';
import { VpnStatusStore, type VpnStatusUpdate } from './vpn-status.store';

/** The status store against a real, migrated Postgres: the ordering rule and the events, one report or a batch. */
describe('VpnStatusStore', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let store: VpnStatusStore;
  let account: string;
  let subnetOctet = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = new DataSource(dataSourceOptions(db.url));
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    store = new VpnStatusStore(ds);
  });

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  /** An account with `n` devices, inserted directly; returns the client ids. */
  const createDevices = async (n: number): Promise<string[]> => {
    account = `acct-${randomBytes(4).toString('hex')}`;
    const octet = ++subnetOctet;
    const [{ id }]: Array<{ id: string }> = await ds.query(
      `INSERT INTO account (optlock, name, path, vpn_subnet) VALUES (1, $1, '', $2) RETURNING id`,
      [account, `10.${octet}.0.0/16`],
    );
    const clientIds = Array.from({ length: n }, (_, i) => `dev-${i}-${randomBytes(3).toString('hex')}`);
    for (const [i, clientId] of clientIds.entries()) {
      await ds.query(`INSERT INTO device (scope_id, optlock, client_id, tunnel_ip) VALUES ($1, 1, $2, $3)`, [
        id,
        clientId,
        `10.${octet}.0.${i + 2}`,
      ]);
    }
    return clientIds;
  };

  const report = (r: Partial<VpnStatusReport> = {}): VpnStatusReport => ({
    connected: true,
    ipAddress: '10.200.0.7',
    status: 'connected',
    statusCode: '004',
    bootId: 'boot-1',
    seq: 1,
    ...r,
  });
  const update = (clientId: string, r: Partial<VpnStatusReport>, acct = account): VpnStatusUpdate => ({
    account: acct,
    clientId,
    report: report(r),
    sentOn: new Date('2025-01-02T03:04:05.678Z'),
  });
  const stored = async (clientId: string) =>
    (
      await ds.query(
        `SELECT s.connected, s.status, s.boot_id AS "bootId", s.seq::int AS seq FROM device_vpn_status s
           JOIN device d ON d.id = s.device_id WHERE d.client_id = $1`,
        [clientId],
      )
    )[0] as { connected: boolean; status: string; bootId: string; seq: number } | undefined;
  const events = async (
    clientId: string,
  ): Promise<Array<{ details: Record<string, unknown>; sentOn: Date | null }>> =>
    ds.query(
      `SELECT e.details, e.sent_on AS "sentOn" FROM device_event e JOIN device d ON d.id = e.device_id
        WHERE d.client_id = $1 AND e.type = 'VPN_STATUS' ORDER BY e.id`,
      [clientId],
    );

  it('should apply every report of a batch of several devices in one call', async () => {
    const ids = await createDevices(5);
    const result = await store.applyMany(ids.map((id, i) => update(id, { seq: i + 1 })));
    expect(result).toHaveLength(5);
    for (const [i, id] of ids.entries()) {
      expect(await stored(id)).toEqual({
        connected: true,
        status: 'connected',
        bootId: 'boot-1',
        seq: i + 1,
      });
      const ev = await events(id);
      expect(ev).toHaveLength(1);
      expect(ev[0].details).toEqual({
        connected: true,
        ipAddress: '10.200.0.7',
        status: 'connected',
        statusCode: '004',
        bootId: 'boot-1',
        seq: i + 1,
      });
      expect(ev[0].sentOn).toEqual(new Date('2025-01-02T03:04:05.678Z'));
    }
  });

  it('should record an event only for the devices of a large batch whose status changed', async () => {
    // 40 devices: past the prepared-statement size, so the batch form of the statement runs.
    const ids = await createDevices(40);
    await store.applyMany(ids.map((id) => update(id, { seq: 1 })));
    // Every other device reports a change; the rest report the same status with a higher seq.
    const changed = (i: number) => i % 2 === 0;
    const result = await store.applyMany(
      ids.map((id, i) => update(id, changed(i) ? { seq: 2, connected: false, status: 'idle' } : { seq: 2 })),
    );
    expect(result).toHaveLength(40);
    for (const [i, id] of ids.entries()) {
      expect(await stored(id)).toMatchObject({ seq: 2, status: changed(i) ? 'idle' : 'connected' });
      expect(await events(id)).toHaveLength(changed(i) ? 2 : 1);
    }
    // Stale reports of the whole batch change nothing and record nothing.
    expect(await store.applyMany(ids.map((id) => update(id, { seq: 1, status: 'error' })))).toEqual([]);
    for (const [i, id] of ids.entries()) expect(await events(id)).toHaveLength(changed(i) ? 2 : 1);
  });

  it('should apply two reports of one device in one batch in order, the higher seq last', async () => {
    const [a, b] = await createDevices(2);
    await store.applyMany([
      update(a, { seq: 1, connected: false, status: 'connecting', ipAddress: '0.0.0.0', statusCode: '001' }),
      update(b, { seq: 1 }),
      update(a, { seq: 2 }),
    ]);
    expect(await stored(a)).toMatchObject({ connected: true, status: 'connected', seq: 2 });
    expect((await events(a)).map((e) => e.details.seq)).toEqual([1, 2]);
    expect(await stored(b)).toMatchObject({ seq: 1 });
  });

  it('should never roll back to a lower seq that comes after a higher one, in one batch or later', async () => {
    const [a] = await createDevices(1);
    await store.applyMany([update(a, { seq: 5 }), update(a, { seq: 3, connected: false, status: 'idle' })]);
    expect(await stored(a)).toMatchObject({ connected: true, status: 'connected', seq: 5 });
    expect(await store.applyMany([update(a, { seq: 4, connected: false, status: 'idle' })])).toEqual([]);
    expect(await stored(a)).toMatchObject({ connected: true, seq: 5 });
    expect((await events(a)).map((e) => e.details.seq)).toEqual([5]);
  });

  it('should ignore a replayed report (same boot, same seq) and accept a new boot with a lower seq', async () => {
    const [a] = await createDevices(1);
    await store.apply(account, a, report({ seq: 7 }), null);
    expect(await store.apply(account, a, report({ seq: 7, status: 'error' }), null)).toBeNull();
    const next = await store.apply(
      account,
      a,
      report({ bootId: 'boot-2', seq: 0, connected: false, status: 'idle' }),
      null,
    );
    expect(next).toMatchObject({ connected: false, status: 'idle' });
    expect(await stored(a)).toMatchObject({ bootId: 'boot-2', seq: 0 });
    expect((await events(a)).map((e) => [e.details.bootId, e.details.seq])).toEqual([
      ['boot-1', 7],
      ['boot-2', 0],
    ]);
  });

  it('should record an event once per change, not for a newer report with the same status', async () => {
    const [a, b] = await createDevices(2);
    await store.applyMany([update(a, { seq: 1 }), update(b, { seq: 1 })]);
    await store.applyMany([update(a, { seq: 2 }), update(b, { seq: 2, connected: false, status: 'idle' })]);
    await store.applyMany([update(a, { seq: 3 }), update(b, { seq: 3, connected: false, status: 'idle' })]);
    expect(await stored(a)).toMatchObject({ seq: 3 });
    expect(await stored(b)).toMatchObject({ seq: 3 });
    expect((await events(a)).map((e) => e.details.seq)).toEqual([1]);
    expect((await events(b)).map((e) => e.details.seq)).toEqual([1, 2]);
  });

  it('should skip unknown devices and accounts and apply the rest of the batch', async () => {
    const [a] = await createDevices(1);
    const result = await store.applyMany([
      update('no-such-device', { seq: 1 }),
      update(a, { seq: 1 }, 'no-such-account'),
      update(a, { seq: 1 }),
    ]);
    expect(result).toHaveLength(1);
    expect(await stored(a)).toMatchObject({ seq: 1 });
    expect(await store.apply(account, 'no-such-device', report(), null)).toBeNull();
  });

  it('should store nothing for an empty batch', async () => {
    expect(await store.applyMany([])).toEqual([]);
  });

  describe('view', () => {
    const scopeOf = async (clientId: string): Promise<{ deviceId: string; scopeId: string }> =>
      (
        await ds.query('SELECT id AS "deviceId", scope_id AS "scopeId" FROM device WHERE client_id = $1', [
          clientId,
        ])
      )[0];

    it('should show a device without a report or a peer, then its last report', async () => {
      const [a] = await createDevices(1);
      const { deviceId, scopeId } = await scopeOf(a);
      expect(await store.view(scopeId, deviceId)).toEqual({
        connectionStatus: 'NEVER_CONNECTED',
        keyed: false,
        reported: null,
        vpnSubnet: expect.stringMatching(/^10\.\d+\.0\.0\/16$/),
        peer: null,
      });
      await store.apply(account, a, report({ seq: 3 }), null);
      expect(await store.view(scopeId, deviceId)).toMatchObject({
        reported: {
          connected: true,
          ipAddress: '10.200.0.7',
          status: 'connected',
          statusCode: '004',
          reportedOn: expect.any(Date),
        },
      });
    });

    it("should not show another tenant's device, nor an unknown one", async () => {
      const [a] = await createDevices(1);
      const { deviceId, scopeId } = await scopeOf(a);
      const [b] = await createDevices(1);
      const other = await scopeOf(b);
      expect(await store.view(other.scopeId, deviceId)).toBeNull();
      expect(await store.view(scopeId, other.deviceId)).toBeNull();
      expect(await store.view(scopeId, randomUUID())).toBeNull();
    });
  });
});
