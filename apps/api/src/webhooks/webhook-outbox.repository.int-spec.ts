import { randomBytes } from 'node:crypto';
import { WebhookOutboxRepository, type EventDelivery } from './webhook-outbox.repository';
import {
  createRepositoryDb,
  type AccountRow,
  type RepositoryDb,
} from '../../../../test/support/repository-db';

/** The webhook outbox against a real, migrated Postgres, without the API. */
describe('WebhookOutboxRepository', () => {
  let db: RepositoryDb;
  let repo: WebhookOutboxRepository;
  let nextEventId = 1000;

  beforeAll(async () => {
    db = await createRepositoryDb();
    repo = new WebhookOutboxRepository(db.ds);
  });

  afterAll(async () => {
    await db?.close();
  });

  const webhook = async (
    account: AccountRow,
    opts: { events?: string[]; enabled?: boolean; createdOn?: Date } = {},
  ): Promise<string> => {
    const [{ id }]: Array<{ id: string }> = await db.ds.query(
      `INSERT INTO webhook (scope_id, optlock, url, events, enabled, secret_sealed, created_on)
       VALUES ($1, 1, 'https://receiver.example/hook', $2, $3, $4, $5) RETURNING id`,
      [
        account.id,
        opts.events ?? ['device.connected'],
        opts.enabled ?? true,
        randomBytes(16),
        opts.createdOn ?? new Date(Date.now() - 60_000),
      ],
    );
    return id;
  };

  const event = (account: AccountRow, type = 'device.connected', occurredOn = new Date()): EventDelivery => ({
    eventId: String(++nextEventId),
    scopeId: account.id,
    type,
    occurredOn: occurredOn.toISOString(),
    payload: JSON.stringify({ type }),
  });

  const deliveriesOf = async (webhookId: string): Promise<Array<{ event_id: string; payload: string }>> =>
    db.ds.query('SELECT event_id, payload FROM webhook_delivery WHERE webhook_id = $1 ORDER BY event_id', [
      webhookId,
    ]);

  describe('dispatching fleet events', () => {
    it("should deliver an event to the endpoints of its account and its ancestors, never to another tenant's", async () => {
      const root = await db.account();
      const tenant = await db.account({ parent: root });
      const child = await db.account({ parent: tenant });
      const sibling = await db.account({ parent: root });
      const atRoot = await webhook(root);
      const atTenant = await webhook(tenant);
      const atChild = await webhook(child);
      const atSibling = await webhook(sibling);

      const e = event(tenant);
      expect(await db.ds.transaction((em) => repo.enqueueEvents(em, [e]))).toBe(2);
      expect(await deliveriesOf(atRoot)).toEqual([{ event_id: e.eventId, payload: e.payload }]);
      expect(await deliveriesOf(atTenant)).toEqual([{ event_id: e.eventId, payload: e.payload }]);
      expect(await deliveriesOf(atChild)).toEqual([]);
      expect(await deliveriesOf(atSibling)).toEqual([]);
    });

    it('should skip disabled endpoints, other event types and endpoints created after the event', async () => {
      const account = await db.account();
      const disabled = await webhook(account, { enabled: false });
      const otherType = await webhook(account, { events: ['device.disconnected'] });
      const later = await webhook(account, { createdOn: new Date(Date.now() + 60_000) });
      const both = await webhook(account, { events: ['device.connected', 'device.disconnected'] });

      const created = await db.ds.transaction((em) =>
        repo.enqueueEvents(em, [event(account), event(account, 'device.disconnected')]),
      );
      expect(created).toBe(3);
      expect(await deliveriesOf(disabled)).toEqual([]);
      expect(await deliveriesOf(otherType)).toHaveLength(1);
      expect(await deliveriesOf(later)).toEqual([]);
      expect(await deliveriesOf(both)).toHaveLength(2);
    });

    it('should create a delivery once when an event is dispatched twice, and nothing for no events', async () => {
      const account = await db.account();
      const hook = await webhook(account);
      const e = event(account);
      expect(await db.ds.transaction((em) => repo.enqueueEvents(em, [e]))).toBe(1);
      expect(await db.ds.transaction((em) => repo.enqueueEvents(em, [e]))).toBe(0);
      expect(await db.ds.transaction((em) => repo.enqueueEvents(em, []))).toBe(0);
      expect(await deliveriesOf(hook)).toHaveLength(1);
    });

    it('should move the cursor inside the transaction only', async () => {
      const start = await db.ds.transaction((em) => repo.dispatchCursor(em));
      expect(start).toMatch(/^\d+$/);
      await expect(
        db.ds.transaction(async (em) => {
          await repo.moveDispatchCursor(em, '999999');
          throw new Error('page failed');
        }),
      ).rejects.toThrow('page failed');
      expect(await db.ds.transaction((em) => repo.dispatchCursor(em))).toBe(start);
      await db.ds.transaction((em) => repo.moveDispatchCursor(em, '123456'));
      expect(await db.ds.transaction((em) => repo.dispatchCursor(em))).toBe('123456');
    });

    it('should give the dispatch lock to one transaction at a time', async () => {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let first!: boolean;
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = db.ds.transaction(async (em) => {
        first = await repo.tryLockDispatch(em);
        locked();
        await held;
      });
      await isLocked;
      expect(first).toBe(true);
      expect(await db.ds.transaction((em) => repo.tryLockDispatch(em))).toBe(false);
      release();
      await holder;
      expect(await db.ds.transaction((em) => repo.tryLockDispatch(em))).toBe(true);
    });
  });

  describe('sending', () => {
    it('should claim a due delivery once, record its success, and prune only old final deliveries', async () => {
      const account = await db.account();
      const hook = await webhook(account);
      const delivery = await repo.enqueue(hook, 'webhook.test', '{"type":"webhook.test"}');
      expect(delivery).toMatchObject({ webhookId: hook, status: 'PENDING', attempts: 0 });

      const claimed = await repo.claimDue(100, 60_000);
      const mine = claimed.find((c) => c.id === delivery.id);
      expect(mine).toMatchObject({ webhookId: hook, attempts: 1, url: 'https://receiver.example/hook' });
      expect((await repo.claimDue(100, 60_000)).some((c) => c.id === delivery.id)).toBe(false);

      await repo.record(mine!, { statusCode: 204, error: null, abandoned: false }, [1000]);
      const [row]: Array<{ status: string }> = await db.ds.query(
        'SELECT status FROM webhook_delivery WHERE id = $1',
        [delivery.id],
      );
      expect(row.status).toBe('DELIVERED');

      const old = await repo.enqueue(hook, 'webhook.test', '{}');
      await db.ds.query(
        `UPDATE webhook_delivery SET status = 'FAILED', created_on = now() - interval '31 days' WHERE id = $1`,
        [old.id],
      );
      const oldPending = await repo.enqueue(hook, 'webhook.test', '{}');
      await db.ds.query(`UPDATE webhook_delivery SET created_on = now() - interval '31 days' WHERE id = $1`, [
        oldPending.id,
      ]);
      expect(await repo.pruneFinal(30)).toBe(1);
      const left: Array<{ id: string }> = await db.ds.query(
        'SELECT id FROM webhook_delivery WHERE id = ANY($1::uuid[])',
        [[delivery.id, old.id, oldPending.id]],
      );
      expect(left.map((r) => r.id).sort()).toEqual([delivery.id, oldPending.id].sort());
    });
  });
});
