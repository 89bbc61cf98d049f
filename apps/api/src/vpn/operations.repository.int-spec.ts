import { randomUUID } from 'node:crypto';
import { DISCONNECTED_IP, type VpnStatusReport } from '@app/protocol';
import { AppMetrics } from '../metrics/app-metrics';
import { DeviceOperation } from './device-operation.entity';
import { OperationsRepository } from './operations.repository';
import { createRepositoryDb, type RepositoryDb } from '../../../../test/support/repository-db';

/** The operations repository against a real, migrated Postgres, without the API or a broker. */
describe('OperationsRepository', () => {
  let db: RepositoryDb;
  let repo: OperationsRepository;

  beforeAll(async () => {
    db = await createRepositoryDb();
    repo = new OperationsRepository(db.ds.getRepository(DeviceOperation), db.ds, new AppMetrics());
  });

  afterAll(async () => {
    await db?.close();
  });

  const command = (
    scopeId: string,
    deviceId: string,
    requesterClientId = 'api-1',
    instanceId: string = randomUUID(),
  ) => ({
    scopeId,
    deviceId,
    command: 'connect' as const,
    requestId: randomUUID(),
    requestedBy: null,
    requesterClientId,
    instanceId,
  });
  const connectedDevice = async () => {
    const account = await db.account();
    const device = await db.device(account, { connectionStatus: 'CONNECTED' });
    return { account, device };
  };

  describe('start', () => {
    it('should record a RUNNING operation for an enabled, connected device and return its target', async () => {
      const { account, device } = await connectedDevice();
      const result = await repo.start(command(account.id, device.id));
      expect(result).toMatchObject({
        started: true,
        target: {
          deviceId: device.id,
          scopeId: account.id,
          clientId: device.clientId,
          tunnelIp: device.tunnelIp,
          accountName: account.name,
          vpnSubnet: account.vpnSubnet,
          publicKey: null,
        },
      });
      const id = (result as { operationId: string }).operationId;
      expect(await repo.findOne(account.id, device.id, id)).toMatchObject({
        status: 'RUNNING',
        command: 'connect',
      });
    });

    it('should refuse a second command while one runs (busy), and start one again after it finished', async () => {
      const { account, device } = await connectedDevice();
      const first = await repo.start(command(account.id, device.id));
      expect(await repo.start(command(account.id, device.id))).toMatchObject({ started: false, busy: true });
      await repo.finish((first as { operationId: string }).operationId, {
        status: 'COMPLETED',
        responseCode: 200,
        errorMessage: null,
        durationMs: 12,
      });
      expect(await repo.start(command(account.id, device.id))).toMatchObject({ started: true });
    });

    it('should record nothing for an offline or disabled device, and find no device of another tenant', async () => {
      const account = await db.account();
      const offline = await db.device(account);
      const disabled = await db.device(account, { connectionStatus: 'CONNECTED', status: 'DISABLED' });
      const { device: foreign } = await connectedDevice();
      expect(await repo.start(command(account.id, offline.id))).toMatchObject({
        started: false,
        busy: false,
      });
      expect(await repo.start(command(account.id, disabled.id))).toMatchObject({
        started: false,
        busy: false,
      });
      expect(await repo.start(command(account.id, foreign.id))).toEqual({
        started: false,
        target: null,
        busy: false,
      });
      const [{ n }]: Array<{ n: number }> = await db.ds.query(
        'SELECT count(*)::int AS n FROM device_operation WHERE device_id = ANY($1::uuid[])',
        [[offline.id, disabled.id, foreign.id]],
      );
      expect(n).toBe(0);
    });
  });

  describe('reads', () => {
    it('should not find an operation through another tenant or another device', async () => {
      const { account, device } = await connectedDevice();
      const { account: other, device: otherDevice } = await connectedDevice();
      const sibling = await db.device(account);
      const result = await repo.start(command(account.id, device.id));
      const id = (result as { operationId: string }).operationId;
      expect(await repo.findOne(other.id, device.id, id)).toBeNull();
      expect(await repo.findOne(other.id, otherDevice.id, id)).toBeNull();
      expect(await repo.findOne(account.id, sibling.id, id)).toBeNull();
      expect(await repo.findOne(account.id, device.id, randomUUID())).toBeNull();
    });
  });

  describe('finish', () => {
    it('should store the outcome, cut a long device message to 1024 characters', async () => {
      const { account, device } = await connectedDevice();
      const id = ((await repo.start(command(account.id, device.id))) as { operationId: string }).operationId;
      await repo.finish(id, {
        status: 'FAILED',
        responseCode: 500,
        errorMessage: 'x'.repeat(5000),
        durationMs: 40,
      });
      const op = await repo.findOne(account.id, device.id, id);
      expect(op).toMatchObject({ status: 'FAILED', responseCode: 500, durationMs: 40 });
      expect(op?.errorMessage).toHaveLength(1024);
      expect(op?.endedOn).toBeInstanceOf(Date);
    });

    const report = (seq: number, connected: boolean): VpnStatusReport => ({
      connected,
      ipAddress: connected ? '100.64.0.9' : DISCONNECTED_IP,
      status: connected ? 'connected' : 'idle',
      statusCode: connected ? '004' : '001',
      bootId: 'boot-1',
      seq,
    });
    const storedStatus = async (deviceId: string) =>
      (
        await db.ds.query(
          `SELECT connected, status, seq::int AS seq FROM device_vpn_status WHERE device_id = $1`,
          [deviceId],
        )
      )[0] ?? null;
    const statusEvents = async (deviceId: string): Promise<number> =>
      (
        await db.ds.query(
          `SELECT count(*)::int AS n FROM device_event WHERE device_id = $1 AND type = 'VPN_STATUS'`,
          [deviceId],
        )
      )[0].n;

    it('should store the outcome and the status the device reported in the same statement', async () => {
      const { account, device } = await connectedDevice();
      const id = ((await repo.start(command(account.id, device.id))) as { operationId: string }).operationId;
      const stored = await repo.finish(
        id,
        { status: 'COMPLETED', responseCode: 200, errorMessage: null, durationMs: 7 },
        { account: account.name, clientId: device.clientId, report: report(3, true), sentOn: null },
      );
      expect(stored).toMatchObject({
        deviceId: device.id,
        scopeId: account.id,
        connected: true,
        status: 'connected',
      });
      expect(stored?.reportedOn).toBeInstanceOf(Date);
      expect(await repo.findOne(account.id, device.id, id)).toMatchObject({
        status: 'COMPLETED',
        responseCode: 200,
        durationMs: 7,
      });
      expect(await storedStatus(device.id)).toEqual({ connected: true, status: 'connected', seq: 3 });
      expect(await statusEvents(device.id)).toBe(1);
    });

    it('should write the outcome but keep the stored status when the reported one is older', async () => {
      const { account, device } = await connectedDevice();
      const status = { account: account.name, clientId: device.clientId, sentOn: null };
      const first = ((await repo.start(command(account.id, device.id))) as { operationId: string })
        .operationId;
      await repo.finish(
        first,
        { status: 'COMPLETED', responseCode: 200, errorMessage: null, durationMs: 1 },
        { ...status, report: report(5, true) },
      );
      const second = ((await repo.start(command(account.id, device.id))) as { operationId: string })
        .operationId;
      const stored = await repo.finish(
        second,
        { status: 'COMPLETED', responseCode: 200, errorMessage: null, durationMs: 1 },
        { ...status, report: report(4, false) },
      );
      expect(stored).toBeNull();
      expect(await repo.findOne(account.id, device.id, second)).toMatchObject({ status: 'COMPLETED' });
      expect(await storedStatus(device.id)).toEqual({ connected: true, status: 'connected', seq: 5 });
      expect(await statusEvents(device.id)).toBe(1);
    });

    it('should close the operation and store the status when the device message cannot be stored', async () => {
      const { account, device } = await connectedDevice();
      const id = ((await repo.start(command(account.id, device.id))) as { operationId: string }).operationId;
      // Postgres text cannot hold NUL: the first write fails, the second stores the outcome without it.
      const stored = await repo.finish(
        id,
        { status: 'FAILED', responseCode: 500, errorMessage: 'bad\u0000message', durationMs: 2 },
        { account: account.name, clientId: device.clientId, report: report(1, false), sentOn: null },
      );
      expect(stored).toMatchObject({ connected: false, status: 'idle' });
      expect(await repo.findOne(account.id, device.id, id)).toMatchObject({
        status: 'FAILED',
        errorMessage: '(the device message could not be stored)',
      });
      expect(await storedStatus(device.id)).toEqual({ connected: false, status: 'idle', seq: 1 });
    });

    it('should still close the operation when the database refuses the reported status', async () => {
      const { account, device } = await connectedDevice();
      const id = ((await repo.start(command(account.id, device.id))) as { operationId: string }).operationId;
      // status_code is varchar(3): this report cannot be stored, the outcome still is.
      const stored = await repo.finish(
        id,
        { status: 'COMPLETED', responseCode: 200, errorMessage: null, durationMs: 2 },
        {
          account: account.name,
          clientId: device.clientId,
          report: { ...report(1, true), statusCode: '00004' },
          sentOn: null,
        },
      );
      expect(stored).toBeNull();
      expect(await repo.findOne(account.id, device.id, id)).toMatchObject({
        status: 'COMPLETED',
        errorMessage: null,
      });
      expect(await storedStatus(device.id)).toBeNull();
    });
  });

  describe('closing left-over operations', () => {
    it('should fail only the RUNNING operations of the given API instance', async () => {
      const a = await connectedDevice();
      const b = await connectedDevice();
      const mine = (
        (await repo.start(command(a.account.id, a.device.id, 'api-old'))) as { operationId: string }
      ).operationId;
      const theirs = (
        (await repo.start(command(b.account.id, b.device.id, 'api-other'))) as { operationId: string }
      ).operationId;
      expect(await repo.closeInterrupted('api-old')).toBe(1);
      expect(await repo.findOne(a.account.id, a.device.id, mine)).toMatchObject({
        status: 'FAILED',
        errorMessage: 'Interrupted: the API instance restarted',
      });
      expect(await repo.findOne(b.account.id, b.device.id, theirs)).toMatchObject({ status: 'RUNNING' });
      expect(await repo.closeInterrupted('api-old')).toBe(0);
    });

    it('should fail only the RUNNING operations of the given instances, with the given message', async () => {
      const [a, b, c] = [await connectedDevice(), await connectedDevice(), await connectedDevice()];
      const [dead1, dead2, alive] = [randomUUID(), randomUUID(), randomUUID()];
      const start = async (d: typeof a, instance: string) =>
        ((await repo.start(command(d.account.id, d.device.id, 'api-x', instance))) as { operationId: string })
          .operationId;
      const ops = [await start(a, dead1), await start(b, dead2), await start(c, alive)];
      expect(await repo.closeOfInstances([dead1, dead2], 'gone')).toBe(2);
      expect(await repo.findOne(a.account.id, a.device.id, ops[0])).toMatchObject({
        status: 'FAILED',
        errorMessage: 'gone',
        instanceId: dead1,
      });
      expect((await repo.findOne(a.account.id, a.device.id, ops[0]))?.endedOn).toBeInstanceOf(Date);
      expect(await repo.findOne(b.account.id, b.device.id, ops[1])).toMatchObject({ status: 'FAILED' });
      expect(await repo.findOne(c.account.id, c.device.id, ops[2])).toMatchObject({ status: 'RUNNING' });
      expect(await repo.closeOfInstances([dead1, dead2], 'gone')).toBe(0);
    });

    it('should close an abandoned operation only once it is older than the limit', async () => {
      const { account, device } = await connectedDevice();
      const id = ((await repo.start(command(account.id, device.id))) as { operationId: string }).operationId;
      expect(await repo.closeAbandoned(device.id, 3_600_000)).toBe(false);
      await db.ds.query(`UPDATE device_operation SET started_on = now() - interval '2 hours' WHERE id = $1`, [
        id,
      ]);
      expect(await repo.closeAbandoned(device.id, 3_600_000)).toBe(true);
      expect(await repo.findOne(account.id, device.id, id)).toMatchObject({ status: 'FAILED' });
    });
  });
});
