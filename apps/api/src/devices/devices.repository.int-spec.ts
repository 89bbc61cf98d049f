import { randomUUID } from 'node:crypto';
import type { BirthCertificate } from '@app/protocol';
import { Device } from './device.entity';
import { DevicesRepository, type InferredConnection } from './devices.repository';
import { MoreThan } from 'typeorm';
import { toDeviceDto, type DeviceDto } from './dto/device.dto';
import { toListResult, type ListResult } from '../common/list';
import { decodeCursor, encodeCursor, type ListCursor } from '../common/list-cursor';
import { cursorText } from '../database/sql-json';
import { createRepositoryDb, suffix, type RepositoryDb } from '../../../../test/support/repository-db';

/** The devices repository against a real, migrated Postgres, without the API or a broker. */
describe('DevicesRepository', () => {
  let db: RepositoryDb;
  let repo: DevicesRepository;

  beforeAll(async () => {
    db = await createRepositoryDb();
    repo = new DevicesRepository(db.ds.getRepository(Device), db.ds);
  });

  afterAll(async () => {
    await db?.close();
  });

  const fields = (clientId: string, tunnelIp: string) => ({
    clientId,
    displayName: '',
    status: 'ENABLED' as const,
    gatewayId: null,
    tunnelIp,
    createdBy: null,
  });
  const events = async (
    deviceId: string,
  ): Promise<Array<{ type: string; details: Record<string, unknown> }>> =>
    db.ds.query('SELECT type, details FROM device_event WHERE device_id = $1 ORDER BY id', [deviceId]);

  describe('scope isolation', () => {
    it("should not find, change, delete or re-key another tenant's device", async () => {
      const a = await db.account();
      const b = await db.account();
      const device = await db.device(a);

      expect((await repo.findOne(a.id, device.id))?.clientId).toBe(device.clientId);
      expect(await repo.findOne(b.id, device.id)).toBeNull();
      await expect(repo.update(b.id, device.id, 1, { displayName: 'stolen' })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      expect(await db.ds.transaction((em) => repo.delete(em, b.id, device.id))).toBeNull();
      await repo.setCredentials(b.id, device.id, `x:${suffix()}`, Buffer.alloc(32));
      const current = await repo.findOne(a.id, device.id);
      expect(current).toMatchObject({ displayName: '', optlock: 1, mqttUsername: null });
    });
  });

  describe('rows', () => {
    it('should insert a device, and map a taken clientId of the same account to ENTRY_EXISTS', async () => {
      const a = await db.account({ vpnSubnet: '10.200.0.0/24' });
      const b = await db.account({ vpnSubnet: '10.201.0.0/24' });
      const saved = await db.ds.transaction((em) => repo.insert(em, a.id, fields('edge-1', '10.200.0.2')));
      expect(saved).toMatchObject({ scopeId: a.id, clientId: 'edge-1', status: 'ENABLED', optlock: 1 });
      await expect(
        db.ds.transaction((em) => repo.insert(em, a.id, fields('edge-1', '10.200.0.3'))),
      ).rejects.toMatchObject({ code: 'ENTRY_EXISTS', message: 'Device already exists' });
      // The clientId is unique per account only.
      await db.ds.transaction((em) => repo.insert(em, b.id, fields('edge-1', '10.201.0.2')));
    });

    it('should update with the current optlock and refuse a stale one', async () => {
      const a = await db.account();
      const device = await db.device(a);
      expect(await repo.update(a.id, device.id, 1, { status: 'DISABLED' })).toMatchObject({
        status: 'DISABLED',
        optlock: 2,
      });
      await expect(repo.update(a.id, device.id, 1, { status: 'ENABLED' })).rejects.toMatchObject({
        code: 'OPTLOCK_CONFLICT',
      });
    });

    it('should delete a device of the scope and give back its clientId', async () => {
      const a = await db.account();
      const device = await db.device(a);
      expect(await db.ds.transaction((em) => repo.delete(em, a.id, device.id))).toEqual({
        clientId: device.clientId,
        tunnelIp: device.tunnelIp,
      });
      expect(await repo.findOne(a.id, device.id)).toBeNull();
      expect(await db.ds.transaction((em) => repo.delete(em, a.id, randomUUID()))).toBeNull();
    });
  });

  describe('tunnel addresses', () => {
    it('should hand out the lowest free host address from .2, filling gaps, and null when none is left', async () => {
      const a = await db.account({ vpnSubnet: '10.210.0.0/29' });
      const b = await db.account({ vpnSubnet: '10.211.0.0/29' });
      await db.device(a, { tunnelIp: '10.210.0.2' });
      await db.device(a, { tunnelIp: '10.210.0.4' });
      // Another account's devices do not take addresses of this one.
      await db.device(b, { tunnelIp: '10.211.0.3' });
      const next = () =>
        db.ds.transaction(
          async (em) => (await repo.firstFreeTunnelAddress(em, a.id, a.vpnSubnet))?.ip ?? null,
        );
      expect(await next()).toBe('10.210.0.3');
      await db.device(a, { tunnelIp: '10.210.0.3' });
      expect(await next()).toBe('10.210.0.5');
      await db.device(a, { tunnelIp: '10.210.0.5' });
      await db.device(a, { tunnelIp: '10.210.0.6' });
      // .7 is the broadcast address of the /29.
      expect(await next()).toBeNull();
    });

    it('should search from the given host offset, past a first window that is all taken', async () => {
      const a = await db.account({ vpnSubnet: '10.212.0.0/24' });
      // Offsets 2..69 taken: more than the first window of the search.
      for (let host = 2; host < 70; host++) await db.device(a, { tunnelIp: `10.212.0.${host}` });
      const from = (host: number) =>
        db.ds.transaction((em) => repo.firstFreeTunnelAddress(em, a.id, a.vpnSubnet, host));
      expect(await from(2)).toEqual({ ip: '10.212.0.70', host: 70 });
      expect(await from(100)).toEqual({ ip: '10.212.0.100', host: 100 });
      // Never below .2, never the broadcast address.
      expect(await from(0)).toEqual({ ip: '10.212.0.70', host: 70 });
      expect(await from(255)).toBeNull();
    });
  });

  describe('broker credentials', () => {
    it('should find a device by MQTT username with its account name, and null for an unknown one', async () => {
      const a = await db.account();
      const device = await db.device(a);
      const username = `${a.name}:${device.clientId}`;
      await repo.setCredentials(a.id, device.id, username, Buffer.alloc(32, 7));
      expect(await repo.findByMqttUsername(username)).toEqual({
        id: device.id,
        clientId: device.clientId,
        status: 'ENABLED',
        digest: Buffer.alloc(32, 7),
        account: a.name,
      });
      expect(await repo.findByMqttUsername(`${a.name}:nobody`)).toBeNull();
    });
  });

  describe('lifecycle', () => {
    const birth: BirthCertificate = {
      displayName: 'Edge box',
      modelId: 'M-1',
      serialNumber: 'SN-1',
      firmwareVersion: '1.0',
      connectionIp: '192.0.2.10',
      applicationIds: ['VPN-V1', 'CONF-V1'],
      publicKey: 'k'.repeat(44),
    };

    it('should apply a BIRTH to the device of (account, clientId) and record it as an event', async () => {
      const a = await db.account();
      const b = await db.account();
      const device = await db.device(a, { clientId: 'same-name' });
      const other = await db.device(b, { clientId: 'same-name' });
      const applied = await repo.applyLifecycle(a.name, 'same-name', {
        connectionStatus: 'CONNECTED',
        eventType: 'BIRTH',
        birth,
        sentOn: new Date('2025-01-02T03:04:05Z'),
        details: { modelId: 'M-1' },
      });
      expect(applied).toEqual({ id: device.id, scopeId: a.id, tunnelIp: device.tunnelIp });
      expect(await repo.findOne(a.id, device.id)).toMatchObject({
        connectionStatus: 'CONNECTED',
        displayName: 'Edge box',
        modelId: 'M-1',
        serialNumber: 'SN-1',
        applicationIds: 'VPN-V1,CONF-V1',
        vpnPublicKey: 'k'.repeat(44),
      });
      expect(await events(device.id)).toEqual([{ type: 'BIRTH', details: { modelId: 'M-1' } }]);
      // The device of the same name in another account is untouched.
      expect(await repo.findOne(b.id, other.id)).toMatchObject({ connectionStatus: 'NEVER_CONNECTED' });
      expect(await events(other.id)).toEqual([]);
    });

    it('should keep the key and profile on a DC, and match nothing for an unknown device', async () => {
      const a = await db.account();
      const device = await db.device(a);
      await repo.applyLifecycle(a.name, device.clientId, {
        connectionStatus: 'CONNECTED',
        eventType: 'BIRTH',
        birth,
        sentOn: null,
        details: {},
      });
      await repo.applyLifecycle(a.name, device.clientId, {
        connectionStatus: 'DISCONNECTED',
        eventType: 'DC',
        birth: undefined,
        sentOn: null,
        details: {},
      });
      expect(await repo.findOne(a.id, device.id)).toMatchObject({
        connectionStatus: 'DISCONNECTED',
        vpnPublicKey: 'k'.repeat(44),
        modelId: 'M-1',
      });
      expect((await events(device.id)).map((e) => e.type)).toEqual(['BIRTH', 'DC']);
      const none = {
        connectionStatus: 'MISSING',
        eventType: 'LWT',
        birth: undefined,
        sentOn: null,
        details: {},
      } as const;
      expect(await repo.applyLifecycle(a.name, 'nobody', none)).toBeNull();
      expect(await repo.applyLifecycle('no-such-account', device.clientId, none)).toBeNull();
    });
  });

  describe('connection truth', () => {
    const set = (id: string, status: string, lastEventOn: string) =>
      db.ds.query('UPDATE device SET connection_status = $2, last_event_on = $3 WHERE id = $1', [
        id,
        status,
        lastEventOn,
      ]);

    it('should page CONNECTED devices for a resync, and with a changedSince also those gone since then', async () => {
      const a = await db.account();
      const connected = await db.device(a);
      const goneRecently = await db.device(a);
      const disconnectedRecently = await db.device(a);
      const goneLongAgo = await db.device(a);
      const never = await db.device(a);
      await set(connected.id, 'CONNECTED', '2026-01-01T00:00:00Z');
      await set(goneRecently.id, 'MISSING', '2026-06-01T00:00:10Z');
      await set(disconnectedRecently.id, 'DISCONNECTED', '2026-06-01T00:00:20Z');
      await set(goneLongAgo.id, 'MISSING', '2026-05-01T00:00:00Z');
      const ours = new Set(
        [connected, goneRecently, disconnectedRecently, goneLongAgo, never].map((d) => d.id),
      );
      const all = async (changedSince: Date | null) => {
        const seen: string[] = [];
        let after: string | null = null;
        for (;;) {
          // A page of 2: the keyset paging is exercised across pages.
          const page = await repo.pageForResync(after, 2, changedSince);
          seen.push(...page.filter((d) => ours.has(d.id)).map((d) => d.id));
          if (page.length < 2) return seen.sort();
          after = page[page.length - 1].id;
        }
      };
      expect(await all(null)).toEqual([connected.id]);
      expect(await all(new Date('2026-06-01T00:00:00Z'))).toEqual(
        [connected.id, goneRecently.id, disconnectedRecently.id].sort(),
      );
    });

    it('should infer a change only from the allowed statuses and only for a device silent since the given time', async () => {
      const a = await db.account();
      const device = await db.device(a);
      const missing: InferredConnection = {
        connectionStatus: 'MISSING',
        from: ['CONNECTED'],
        eventType: 'LWT',
        inferredFrom: 'no answer to the status request',
      };
      // NEVER_CONNECTED is not a status MISSING may come from.
      expect(await repo.inferConnection(a.name, device.clientId, missing)).toBeNull();
      await set(device.id, 'CONNECTED', '2026-06-01T00:00:10Z');
      // A lifecycle message after the resync began: not silent.
      expect(
        await repo.inferConnection(a.name, device.clientId, {
          ...missing,
          silentSince: new Date('2026-06-01T00:00:00Z'),
        }),
      ).toBeNull();
      expect(
        await repo.inferConnection(a.name, device.clientId, {
          ...missing,
          silentSince: new Date('2026-06-01T00:00:20Z'),
        }),
      ).toEqual({ id: device.id, scopeId: a.id });
      expect(await repo.findOne(a.id, device.id)).toMatchObject({ connectionStatus: 'MISSING' });
      expect(await events(device.id)).toEqual([
        { type: 'LWT', details: { inferredFrom: 'no answer to the status request' } },
      ]);
    });
  });

  describe('subtree state', () => {
    it('should list the devices of a subtree with their VPN state, and nothing of a sibling or above', async () => {
      const root = await db.account();
      const tenant = await db.account({ parent: root });
      const child = await db.account({ parent: tenant });
      const sibling = await db.account({ parent: root });
      const own = await db.device(tenant);
      const below = await db.device(child);
      await db.device(sibling);
      await db.device(root);
      await db.ds.query(
        `INSERT INTO device_vpn_status (device_id, scope_id, connected, ip_address, status, status_code, boot_id, seq, reported_on)
         VALUES ($1, $2, true, '10.9.0.2', 'connected', '004', 'b', 1, now())`,
        [below.id, child.id],
      );
      const states = await repo.statesInSubtree(tenant.path);
      expect(states).toHaveLength(2);
      expect(states).toEqual(
        expect.arrayContaining([
          {
            deviceId: own.id,
            clientId: own.clientId,
            scopeId: tenant.id,
            deviceConnection: 'NEVER_CONNECTED',
            connected: false,
            ipAddress: '0.0.0.0',
            status: 'idle',
            statusCode: '000',
          },
          {
            deviceId: below.id,
            clientId: below.clientId,
            scopeId: child.id,
            deviceConnection: 'NEVER_CONNECTED',
            connected: true,
            ipAddress: '10.9.0.2',
            status: 'connected',
            statusCode: '004',
          },
        ]),
      );
      expect(await repo.statesInSubtree(child.path)).toHaveLength(1);
    });
  });

  describe('list page JSON', () => {
    /** The body the list route sent before the statement wrote it: TypeORM rows, mapped, stringified. */
    const reference = async (
      scopeId: string,
      where: Record<string, unknown>,
      q: { offset: number; limit: number; askTotalCount: boolean; cursor: ListCursor | null },
    ): Promise<string> => {
      const devices = db.ds.getRepository(Device);
      const after = q.cursor ? { clientId: MoreThan(q.cursor.clientId) } : {};
      const rows = await devices.find({
        where: { scopeId, ...where, ...after },
        order: { clientId: 'ASC' },
        skip: q.offset,
        take: q.limit + 1,
      });
      const total = q.askTotalCount ? await devices.count({ where: { scopeId, ...where } }) : undefined;
      const list: ListResult<DeviceDto> & { nextCursor?: string } = toListResult(
        rows,
        { ...q },
        toDeviceDto,
        total,
      );
      const last = list.items[list.items.length - 1];
      if (list.limitExceeded) list.nextCursor = encodeCursor({ clientId: last.clientId, id: last.id });
      return JSON.stringify(list);
    };

    it('should write exactly the bytes JSON.stringify gave for every page, filter and field form', async () => {
      const a = await db.account();
      const other = await db.account();
      await db.device(other);
      const made = [];
      for (let i = 0; i < 7; i++) made.push(await db.device(a, { clientId: `pg-${i}-${suffix()}` }));
      // Every nullable field filled on some devices, odd text, empty parts in application ids.
      await db.ds.query(
        `UPDATE device SET display_name = $2, model_id = 'M"1', serial_number = 'S\\n2', firmware_version = 'ü 3',
                connection_ip = '192.0.2.7', application_ids = ',a,,b,', vpn_public_key = 'k=',
                mqtt_username = 'acct:' || id, credentials_issued_on = '2026-01-02T03:04:05.678912Z',
                last_event_on = '2026-01-02T03:04:05.6Z', created_by = $3, modified_by = $3,
                connection_status = 'CONNECTED', status = 'DISABLED'
          WHERE id = ANY($1::uuid[])`,
        [[made[1].id, made[4].id], 'tab\there "quoted" \\ back\u0001 \u2028 日本', randomUUID()],
      );
      await db.ds.query(`UPDATE device SET application_ids = 'x' WHERE id = $1`, [made[2].id]);
      const pages = [
        { offset: 0, limit: 3, askTotalCount: false, cursor: null },
        { offset: 3, limit: 3, askTotalCount: true, cursor: null },
        { offset: 6, limit: 3, askTotalCount: true, cursor: null },
        { offset: 10, limit: 3, askTotalCount: true, cursor: null },
        { offset: 0, limit: 500, askTotalCount: false, cursor: null },
        { offset: 0, limit: 2, askTotalCount: true, cursor: { clientId: made[2].clientId, id: made[2].id } },
        { offset: 0, limit: 2, askTotalCount: false, cursor: { clientId: made[6].clientId, id: made[6].id } },
      ];
      for (const q of pages) {
        expect(await repo.listPageJson(a.id, {}, q)).toBe(await reference(a.id, {}, q));
      }
      const q = { offset: 0, limit: 50, askTotalCount: true, cursor: null };
      expect(await repo.listPageJson(a.id, { status: 'DISABLED' }, q)).toBe(
        await reference(a.id, { status: 'DISABLED' }, q),
      );
      expect(
        await repo.listPageJson(a.id, { connectionStatus: 'CONNECTED', clientId: made[4].clientId }, q),
      ).toBe(await reference(a.id, { connectionStatus: 'CONNECTED', clientId: made[4].clientId }, q));
      const matched = JSON.parse(await repo.listPageJson(a.id, { matchTerm: 'S\\n' }, q)) as {
        items: Array<{ id: string }>;
      };
      expect(matched.items.map((d) => d.id).sort()).toEqual([made[1].id, made[4].id].sort());
      // A LIKE wildcard in the term is a literal character.
      expect(JSON.parse(await repo.listPageJson(a.id, { matchTerm: '%' }, q)).size).toBe(0);
    });

    it("should write a device's cursor in SQL exactly as encodeCursor does, up to the longest client id", async () => {
      for (const clientId of ['a', 'gw-0042.site_A', 'x'.repeat(64), `${'y'.repeat(63)}-`]) {
        const id = randomUUID();
        const [row] = await db.ds.query<Array<{ cursor: string }>>(
          `SELECT ${cursorText('$1::text', '$2::text')} AS cursor`,
          [clientId, id],
        );
        expect(row.cursor).toBe(encodeCursor({ clientId, id }));
      }
    });

    it('should walk every device once by cursor while devices are created and deleted between pages', async () => {
      const a = await db.account();
      const other = await db.account();
      await db.device(other, { clientId: 'walk-00' });
      const ids = new Map<string, string>();
      for (let i = 1; i <= 9; i++) {
        const d = await db.device(a, { clientId: `walk-${String(i * 10).padStart(2, '0')}` });
        ids.set(d.clientId, d.id);
      }
      type Page = {
        items: Array<{ id: string; clientId: string }>;
        limitExceeded: boolean;
        nextCursor?: string;
      };
      const page = async (cursor: string | null): Promise<Page> =>
        JSON.parse(
          await repo.listPageJson(
            a.id,
            {},
            { offset: 0, limit: 4, askTotalCount: false, cursor: cursor ? decodeCursor(cursor) : null },
          ),
        ) as Page;
      const first = await page(null);
      expect(first.items.map((d) => d.clientId)).toEqual(['walk-10', 'walk-20', 'walk-30', 'walk-40']);
      expect(decodeCursor(first.nextCursor)).toEqual({ clientId: 'walk-40', id: ids.get('walk-40') });
      // Between pages: a device before the cursor is deleted, one before and one after are created.
      await db.ds.query(`DELETE FROM device WHERE id = $1`, [ids.get('walk-20')]);
      await db.device(a, { clientId: 'walk-15' });
      await db.device(a, { clientId: 'walk-45' });
      const second = await page(first.nextCursor!);
      // With offset 4 this page would start at walk-50 and never show walk-45.
      expect(second.items.map((d) => d.clientId)).toEqual(['walk-45', 'walk-50', 'walk-60', 'walk-70']);
      const third = await page(second.nextCursor!);
      expect(third.items.map((d) => d.clientId)).toEqual(['walk-80', 'walk-90']);
      expect(third.limitExceeded).toBe(false);
      expect(third.nextCursor).toBeUndefined();
      // A page of exactly `limit` devices with nothing after it has no cursor either.
      const exact = JSON.parse(
        await repo.listPageJson(
          a.id,
          {},
          { offset: 0, limit: 2, askTotalCount: false, cursor: decodeCursor(second.nextCursor) },
        ),
      ) as Page;
      expect(exact.items).toHaveLength(2);
      expect(exact.nextCursor).toBeUndefined();
    });
  });
});
