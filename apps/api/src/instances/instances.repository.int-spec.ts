import { randomUUID } from 'node:crypto';
import { AppMetrics } from '../metrics/app-metrics';
import { DeviceOperation } from '../vpn/device-operation.entity';
import { INTERRUPTED_LEASE_EXPIRED, OperationsRepository } from '../vpn/operations.repository';
import { InstancesRepository } from './instances.repository';
import { createRepositoryDb, type RepositoryDb } from '../../../../test/support/repository-db';

/** Instance leases and the reaper's transaction against a real, migrated Postgres, without the API. */
describe('InstancesRepository', () => {
  let db: RepositoryDb;
  let instances: InstancesRepository;
  let operations: OperationsRepository;

  beforeAll(async () => {
    db = await createRepositoryDb();
    instances = new InstancesRepository(db.ds);
    operations = new OperationsRepository(db.ds.getRepository(DeviceOperation), db.ds, new AppMetrics());
  });

  afterAll(async () => {
    await db?.close();
  });

  const instance = () => ({ id: randomUUID(), mqttClientId: `api-${randomUUID().slice(0, 8)}`, host: 'h1' });
  const row = async (id: string) => {
    const rows: Array<{ expires_in_ms: number; mqtt_client_id: string }> = await db.ds.query(
      `SELECT mqtt_client_id, (extract(epoch FROM expires_on - now()) * 1000)::float8 AS expires_in_ms
         FROM api_instance WHERE id = $1`,
      [id],
    );
    return rows[0];
  };
  const expire = (id: string) =>
    db.ds.query(`UPDATE api_instance SET expires_on = now() - interval '1 second' WHERE id = $1`, [id]);
  const runningOn = async (instanceId: string) => {
    const account = await db.account();
    const device = await db.device(account, { connectionStatus: 'CONNECTED' });
    const started = await operations.start({
      scopeId: account.id,
      deviceId: device.id,
      command: 'connect',
      requestId: randomUUID(),
      requestedBy: null,
      requesterClientId: 'api-any',
      instanceId,
    });
    return { account, device, operationId: (started as { operationId: string }).operationId };
  };
  const close = (manager: Parameters<Parameters<InstancesRepository['reapExpired']>[0]>[0], ids: string[]) =>
    operations.closeOfInstances(ids, INTERRUPTED_LEASE_EXPIRED, manager);

  it('should register an instance with a lease of the given length, and renew it', async () => {
    const me = instance();
    expect(await instances.renew(me, 20_000)).toBe(false);
    const first = await row(me.id);
    expect(first.mqtt_client_id).toBe(me.mqttClientId);
    expect(first.expires_in_ms).toBeGreaterThan(15_000);
    expect(first.expires_in_ms).toBeLessThanOrEqual(20_000);
    expect(await instances.renew(me, 60_000)).toBe(true);
    expect((await row(me.id)).expires_in_ms).toBeGreaterThan(55_000);
  });

  it('should close the RUNNING operations of an expired instance, delete it, and leave live ones alone', async () => {
    const dead = instance();
    const alive = instance();
    await instances.renew(dead, 20_000);
    await instances.renew(alive, 20_000);
    const deadOp = await runningOn(dead.id);
    const aliveOp = await runningOn(alive.id);
    await expire(dead.id);

    const result = await instances.reapExpired(close);
    expect(result.instances).toContain(dead.id);
    expect(result.instances).not.toContain(alive.id);
    expect(result.operationsClosed).toBeGreaterThanOrEqual(1);
    expect(await operations.findOne(deadOp.account.id, deadOp.device.id, deadOp.operationId)).toMatchObject({
      status: 'FAILED',
      errorMessage: INTERRUPTED_LEASE_EXPIRED,
    });
    expect(
      await operations.findOne(aliveOp.account.id, aliveOp.device.id, aliveOp.operationId),
    ).toMatchObject({
      status: 'RUNNING',
    });
    expect(await row(dead.id)).toBeUndefined();
    expect(await row(alive.id)).toBeDefined();
    // The device whose command was interrupted takes a new one at once.
    expect(
      await operations.start({
        scopeId: deadOp.account.id,
        deviceId: deadOp.device.id,
        command: 'disconnect',
        requestId: randomUUID(),
        requestedBy: null,
        requesterClientId: 'api-any',
        instanceId: alive.id,
      }),
    ).toMatchObject({ started: true });
  });

  it('should let exactly one of several concurrent reapers handle each dead instance', async () => {
    const dead = [instance(), instance(), instance()];
    for (const d of dead) {
      await instances.renew(d, 20_000);
      await runningOn(d.id);
      await runningOn(d.id);
      await expire(d.id);
    }
    const results = await Promise.all(Array.from({ length: 4 }, () => instances.reapExpired(close)));
    const reaped = results.flatMap((r) => r.instances).filter((id) => dead.some((d) => d.id === id));
    expect(reaped.sort()).toEqual(dead.map((d) => d.id).sort());
    const closed: Array<{ n: number }> = await db.ds.query(
      `SELECT count(*)::int AS n FROM device_operation WHERE instance_id = ANY($1::uuid[]) AND status = 'FAILED'`,
      [dead.map((d) => d.id)],
    );
    expect(closed[0].n).toBe(6);
  });

  it('should give a reaped instance its lease back under the same id when it renews again', async () => {
    const stalled = instance();
    await instances.renew(stalled, 20_000);
    await expire(stalled.id);
    await instances.reapExpired(close);
    expect(await row(stalled.id)).toBeUndefined();
    expect(await instances.renew(stalled, 20_000)).toBe(false);
    expect(await row(stalled.id)).toBeDefined();
  });

  it('should remove an instance that stops cleanly', async () => {
    const me = instance();
    await instances.renew(me, 20_000);
    await instances.remove(me.id);
    expect(await row(me.id)).toBeUndefined();
  });
});
