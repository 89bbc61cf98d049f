import { FleetCountsRepository, type FleetCount } from './fleet-counts.repository';
import { createRepositoryDb, type RepositoryDb } from '../../../../test/support/repository-db';

/** The scrape-time fleet counts against a real, migrated Postgres, without the API. */
describe('FleetCountsRepository', () => {
  let db: RepositoryDb;
  let repo: FleetCountsRepository;

  beforeAll(async () => {
    db = await createRepositoryDb();
    repo = new FleetCountsRepository(db.ds);
  });

  afterAll(async () => {
    await db?.close();
  });

  const sorted = (rows: FleetCount[]) =>
    rows
      .map((r) => ({ ...r, value: Number(r.value) }))
      .sort((x, y) => `${x.metric}/${x.a}/${x.b}`.localeCompare(`${y.metric}/${y.a}/${y.b}`));

  it('should answer only the (zero) session count for an empty fleet', async () => {
    expect(sorted(await repo.read())).toEqual([{ metric: 'sessions', a: '', b: '', value: 0 }]);
  });

  it('should count devices by connection state and deliveries by status, across every account', async () => {
    const a = await db.account();
    const b = await db.account();
    await db.device(a, { connectionStatus: 'CONNECTED' });
    await db.device(a, { connectionStatus: 'CONNECTED' });
    await db.device(b, { connectionStatus: 'CONNECTED' });
    await db.device(b, { connectionStatus: 'DISCONNECTED' });
    const [{ id: webhookId }]: Array<{ id: string }> = await db.ds.query(
      `INSERT INTO webhook (scope_id, optlock, url, events, secret_sealed)
       VALUES ($1, 1, 'https://receiver.example/hook', '{device.connected}', '\\x00') RETURNING id`,
      [a.id],
    );
    await db.ds.query(
      `INSERT INTO webhook_delivery (webhook_id, message_id, event_type, payload, status)
       VALUES ($1, 'msg_1', 'webhook.test', '{}', 'PENDING'), ($1, 'msg_2', 'webhook.test', '{}', 'FAILED'),
              ($1, 'msg_3', 'webhook.test', '{}', 'FAILED')`,
      [webhookId],
    );

    expect(sorted(await repo.read())).toEqual([
      { metric: 'deliveries', a: 'FAILED', b: '', value: 2 },
      { metric: 'deliveries', a: 'PENDING', b: '', value: 1 },
      { metric: 'devices', a: 'CONNECTED', b: '', value: 3 },
      { metric: 'devices', a: 'DISCONNECTED', b: '', value: 1 },
      { metric: 'sessions', a: '', b: '', value: 0 },
    ]);
  });
});
