import type { MqttClient } from 'mqtt';
import request from 'supertest';
import {
  birthMetrics,
  buildCommandReply,
  decodeKuraPayload,
  deviceCommandSubscription,
  encodeKuraPayload,
  readCommandRequest,
  statusMetrics,
  StatusCodes,
  Topics,
  type CommandRequest,
} from '@app/protocol';
import { eventually } from '../support/eventually';
import {
  closed,
  connectDevice,
  createDevice,
  endAll,
  getDevice,
  getVpnStatus,
  issueCredentials,
  kuraBytes,
  listEvents,
  publishBirth,
  publishDc,
  publishStatus,
  recordMessages,
  subscribeGranted,
  uniqueClientId,
  type DeviceBody,
  type DeviceCredentials,
} from '../support/device-factories';
import { createTenant, type Tenant } from '../support/factories';
import { bearer, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

// Device auth and the topic ACL are enforced by the embedded broker; an external broker enforces
// them through its own auth hooks. So these tests always use the embedded broker (with the real
// Postgres when TEST_DATABASE_URL is set).

const SUBACK_FAILURE = 128;

interface Party {
  tenant: Tenant;
  device: DeviceBody;
  creds: DeviceCredentials;
}

describe('device topic ACL (embedded broker)', () => {
  let api: TestApi;
  let rootToken: string;
  let a: Tenant;
  let b: Tenant;
  const clients: MqttClient[] = [];

  const party = async (tenant: Tenant): Promise<Party> => {
    const device = await createDevice(api, tenant.admin.token);
    const creds = await issueCredentials(api, tenant.admin.token, '_', device.id);
    return { tenant, device, creds };
  };

  const connect = async (p: Party, opts: Parameters<typeof connectDevice>[2] = {}) => {
    const client = await connectDevice(api, p.creds, opts);
    clients.push(client);
    return client;
  };

  /** A device that listens to its own commands, recording what it receives. */
  const listener = async (p: Party) => {
    const client = await connect(p);
    const received = recordMessages(client);
    expect(
      await subscribeGranted(client, [deviceCommandSubscription(p.creds.account, p.creds.clientId)]),
    ).toEqual([1]);
    return { client, received };
  };

  /**
   * Publishes on a topic the device may not use: the broker refuses it and closes the
   * connection (aedes answers an unauthorised PUBLISH with a disconnect, not a PUBACK).
   */
  const forbiddenPublish = async (attacker: Party, topic: string, payload: Buffer) => {
    const client = await connect(attacker);
    const gone = closed(client);
    client.publish(topic, payload, { qos: 1 }, () => undefined);
    await gone;
  };

  /**
   * Proves that nothing was delivered to `l` before this point: a device's own message on its
   * own command namespace is delivered after anything the broker forwarded earlier.
   */
  const expectOnlyMarker = async (
    p: Party,
    l: { client: MqttClient; received: Array<{ topic: string }> },
  ) => {
    const marker = `$EDC/${p.creds.account}/${p.creds.clientId}/VPNCLIENT-V2/GET/marker-${uniqueClientId()}`;
    await l.client.publishAsync(marker, kuraBytes([]), { qos: 1 });
    await eventually(() => expect(l.received.map((m) => m.topic)).toContain(marker));
    expect(l.received.map((m) => m.topic)).toEqual([marker]);
    l.received.length = 0;
  };

  beforeAll(async () => {
    api = await startTestApi({}, { embeddedBroker: true });
    rootToken = await login(api);
    a = await createTenant(api, rootToken);
    b = await createTenant(api, rootToken);
  });

  afterAll(async () => {
    await endAll(...clients);
    await api?.stop();
  });

  it("should apply a device's own BIRTH, status report and command reply", async () => {
    const me = await party(a);
    const token = a.admin.token;
    const { client, received } = await listener(me);
    await publishBirth(client, me.creds.account, me.creds.clientId, { modelId: 'own-birth' });
    await eventually(async () =>
      expect(await getDevice(api, token, '_', me.device.id)).toMatchObject({
        connectionStatus: 'CONNECTED',
        modelId: 'own-birth',
      }),
    );
    const idle = {
      connected: false,
      ipAddress: '0.0.0.0',
      status: 'idle' as const,
      statusCode: StatusCodes.NOT_APPLICABLE,
      bootId: 'boot-own',
      seq: 0,
    };
    await publishStatus(client, me.creds.account, me.creds.clientId, idle);
    await eventually(async () =>
      expect(await getVpnStatus(api, token, '_', me.device.id)).toMatchObject({
        connected: false,
        status: 'idle',
        statusCode: StatusCodes.NOT_APPLICABLE,
        reportedOn: expect.any(String),
      }),
    );

    // Answer the connect command the way an agent does: reply to the requester named in it.
    client.on('message', (topic, payload) => {
      const req: CommandRequest | null = readCommandRequest(decodeKuraPayload(payload));
      if (!req || !topic.endsWith('/EXEC/connect')) return;
      const reply = buildCommandReply({
        code: 200,
        status: {
          ...idle,
          connected: true,
          ipAddress: me.device.tunnelAddress,
          status: 'connected',
          statusCode: StatusCodes.ACTIVE,
          seq: 1,
        },
      });
      client.publish(
        Topics.reply(me.creds.account, req.requesterClientId, req.requestId),
        encodeKuraPayload(reply),
        { qos: 1 },
        () => undefined,
      );
    });
    const res = await request(api.url)
      .post(`/v1/_/devices/${me.device.id}/vpn/_connect`)
      .query({ timeout: 10_000 })
      .set(bearer(token))
      .expect(200);
    expect(res.body).toMatchObject({ connected: true, ipAddress: me.device.tunnelAddress });
    expect(received.map((m) => m.topic)).toEqual([
      Topics.command(me.creds.account, me.creds.clientId, 'connect'),
    ]);
    expect(client.connected).toBe(true);
  });

  it('should drop a BIRTH a device publishes for another device of its account or of another account', async () => {
    const attacker = await party(a);
    const sameAccount = await party(a);
    const otherAccount = await party(b);
    for (const victim of [sameAccount, otherAccount]) {
      const forged = kuraBytes(birthMetrics({ applicationIds: ['VPNCLIENT-V2'], modelId: 'forged' }));
      await forbiddenPublish(attacker, Topics.birth(victim.creds.account, victim.creds.clientId), forged);
      // The victim's own DC, published afterwards, is the only lifecycle message that got through.
      const own = await connect(victim);
      await publishDc(own, victim.creds.account, victim.creds.clientId);
      const token = victim.tenant.admin.token;
      await eventually(async () =>
        expect((await getDevice(api, token, '_', victim.device.id)).connectionStatus).toBe('DISCONNECTED'),
      );
      const events = await listEvents(api, token, '_', victim.device.id);
      expect(events.items.map((e) => e.type)).toEqual(['DC']);
      expect((await getDevice(api, token, '_', victim.device.id)).modelId).toBeNull();
    }
  });

  it("should drop a forged DC or LWT for a connected device and keep the attacker's profile out", async () => {
    const attacker = await party(a);
    const victim = await party(b);
    const own = await connect(victim);
    await publishBirth(own, victim.creds.account, victim.creds.clientId, { modelId: 'genuine' });
    const token = b.admin.token;
    await eventually(async () =>
      expect((await getDevice(api, token, '_', victim.device.id)).connectionStatus).toBe('CONNECTED'),
    );
    await forbiddenPublish(
      attacker,
      Topics.disconnect(victim.creds.account, victim.creds.clientId),
      kuraBytes([]),
    );
    await forbiddenPublish(attacker, Topics.lwt(victim.creds.account, victim.creds.clientId), kuraBytes([]));
    await publishBirth(own, victim.creds.account, victim.creds.clientId, { modelId: 'marker' });
    await eventually(async () =>
      expect((await getDevice(api, token, '_', victim.device.id)).modelId).toBe('marker'),
    );
    const events = await listEvents(api, token, '_', victim.device.id);
    expect(events.items.map((e) => e.type)).toEqual(['BIRTH', 'BIRTH']);
    expect((await getDevice(api, token, '_', victim.device.id)).connectionStatus).toBe('CONNECTED');
  });

  it("should not publish a device's last will on another device's topic", async () => {
    const attacker = await party(a);
    const victim = await party(a);
    const own = await connect(victim);
    await publishBirth(own, victim.creds.account, victim.creds.clientId);
    const token = a.admin.token;
    await eventually(async () =>
      expect((await getDevice(api, token, '_', victim.device.id)).connectionStatus).toBe('CONNECTED'),
    );
    const forger = await connect(attacker, { will: Topics.lwt(victim.creds.account, victim.creds.clientId) });
    const gone = closed(forger);
    forger.stream.destroy();
    await gone;
    // Connecting again with the same id ends whatever is left of the old session (and its will).
    await connect(attacker);
    await publishBirth(own, victim.creds.account, victim.creds.clientId, { modelId: 'marker' });
    await eventually(async () =>
      expect((await getDevice(api, token, '_', victim.device.id)).modelId).toBe('marker'),
    );
    const events = await listEvents(api, token, '_', victim.device.id);
    expect(events.items.map((e) => e.type)).toEqual(['BIRTH', 'BIRTH']);
  });

  it("should not deliver a command that a device publishes on another device's command topic", async () => {
    const victim = await party(a);
    const sameAccount = await party(a);
    const otherAccount = await party(b);
    const l = await listener(victim);
    for (const attacker of [sameAccount, otherAccount]) {
      for (const command of ['connect', 'disconnect', 'status'] as const) {
        const forged = encodeKuraPayload({
          timestamp: Date.now(),
          metrics: [],
          body: Buffer.from('{"type":"wireguard"}'),
        });
        await forbiddenPublish(
          attacker,
          Topics.command(victim.creds.account, victim.creds.clientId, command),
          forged,
        );
      }
    }
    await expectOnlyMarker(victim, l);
  });

  it("should drop a status report a device publishes for another device's status topic", async () => {
    const attacker = await party(a);
    const victim = await party(b);
    const report = {
      connected: true,
      ipAddress: '10.99.99.99',
      status: 'connected' as const,
      statusCode: StatusCodes.ACTIVE,
      bootId: 'forged-boot',
      seq: 1_000_000,
    };
    await forbiddenPublish(
      attacker,
      Topics.status(victim.creds.account, victim.creds.clientId),
      kuraBytes(statusMetrics(report)),
    );
    const own = await connect(victim);
    await publishStatus(own, victim.creds.account, victim.creds.clientId, {
      ...report,
      connected: false,
      ipAddress: '0.0.0.0',
      status: 'idle',
      statusCode: StatusCodes.NOT_APPLICABLE,
      bootId: 'own-boot',
      seq: 0,
    });
    const token = b.admin.token;
    await eventually(async () =>
      expect(await getVpnStatus(api, token, '_', victim.device.id)).toMatchObject({
        connected: false,
        status: 'idle',
        reportedOn: expect.any(String),
      }),
    );
    const events = await listEvents(api, token, '_', victim.device.id);
    // Its own report, and the presence that report proves (the device sent no BIRTH); nothing forged.
    expect(events.items.map((e) => [e.type, e.details.bootId ?? e.details.inferredFrom]).sort()).toEqual([
      ['BIRTH', 'status report'],
      ['VPN_STATUS', 'own-boot'],
    ]);
  });

  it('should not let a device answer a command of another account', async () => {
    const attacker = await party(a);
    const victim = await party(b);
    const l = await listener(victim);
    await publishBirth(l.client, victim.creds.account, victim.creds.clientId);
    const token = b.admin.token;
    await eventually(async () =>
      expect((await getDevice(api, token, '_', victim.device.id)).connectionStatus).toBe('CONNECTED'),
    );
    // The victim never answers; the attacker, told the request id, tries to answer in its place.
    const pending = request(api.url)
      .post(`/v1/_/devices/${victim.device.id}/vpn/_connect`)
      .query({ timeout: 1500 })
      .set(bearer(token));
    const answered = pending.then((res) => res);
    const command = await eventually(() => {
      expect(l.received).toHaveLength(1);
      return l.received[0];
    });
    const req = readCommandRequest(decodeKuraPayload((command as { payload: Buffer }).payload));
    expect(req).not.toBeNull();
    const fake = buildCommandReply({
      code: 200,
      status: {
        connected: true,
        ipAddress: '10.99.99.99',
        status: 'connected',
        statusCode: StatusCodes.ACTIVE,
        bootId: 'forged',
        seq: 99,
      },
    });
    await forbiddenPublish(
      attacker,
      Topics.reply(victim.creds.account, req!.requesterClientId, req!.requestId),
      encodeKuraPayload(fake),
    );
    const res = await answered;
    expect({ status: res.status, result: res.body.result }).toEqual({
      status: 504,
      result: 'DEVICE_TIMEOUT',
    });
    expect((await getVpnStatus(api, token, '_', victim.device.id)).connected).toBe(false);
  });

  it('should refuse subscriptions outside the device namespace with SUBACK failure 128', async () => {
    const me = await party(a);
    const sibling = await party(a);
    const stranger = await party(b);
    const client = await connect(me);
    const acc = me.creds.account;
    const refused = [
      deviceCommandSubscription(acc, sibling.creds.clientId),
      deviceCommandSubscription(stranger.creds.account, stranger.creds.clientId),
      `$EDC/${acc}/+/VPNCLIENT-V2/#`,
      `$EDC/+/${me.creds.clientId}/#`,
      `$EDC/${acc}/#`,
      `$EDC/${acc}/${me.creds.clientId}`,
      `$EDC/${acc}-eu/${me.creds.clientId}/#`,
      `$EDC/#`,
      '#',
      '+/+/VPNCLIENT-V2/status',
      Topics.status(acc, sibling.creds.clientId),
      `${acc}/${me.creds.clientId}/VPNCLIENT-V2/status`,
      `$EDC/${acc}/+/VPNCLIENT-V2/REPLY/#`,
      `$share/g/$EDC/${acc}/${me.creds.clientId}/#`,
      '$SYS/#',
    ];
    for (const filter of refused) {
      expect({ filter, granted: await subscribeGranted(client, [filter]) }).toEqual({
        filter,
        granted: [SUBACK_FAILURE],
      });
    }
    // One SUBSCRIBE with a permitted and a refused filter gets a code for each.
    expect(
      await subscribeGranted(client, [
        deviceCommandSubscription(acc, me.creds.clientId),
        deviceCommandSubscription(acc, sibling.creds.clientId),
      ]),
    ).toEqual([1, SUBACK_FAILURE]);
    // A refused subscription is not a reason to disconnect.
    expect(client.connected).toBe(true);
  });

  it("should deliver a device none of another device's commands after a refused subscription", async () => {
    const snoop = await party(a);
    const victim = await party(a);
    const s = await connect(snoop);
    const snooped = recordMessages(s);
    expect(
      await subscribeGranted(s, [deviceCommandSubscription(a.account.name, victim.creds.clientId)]),
    ).toEqual([SUBACK_FAILURE]);
    expect(
      await subscribeGranted(s, [deviceCommandSubscription(a.account.name, snoop.creds.clientId)]),
    ).toEqual([1]);

    const l = await listener(victim);
    await publishBirth(l.client, victim.creds.account, victim.creds.clientId);
    const token = a.admin.token;
    await eventually(async () =>
      expect((await getDevice(api, token, '_', victim.device.id)).connectionStatus).toBe('CONNECTED'),
    );
    // A status command from the cloud reaches the victim (it does not answer: 504 is expected).
    const pending = request(api.url)
      .post(`/v1/_/devices/${victim.device.id}/vpn/_connect`)
      .query({ timeout: 1000 })
      .set(bearer(token))
      .then((res) => res.status);
    await eventually(() => expect(l.received).toHaveLength(1));
    // The snoop's own marker, published after the command went out, is all it ever receives.
    await expectOnlyMarker(snoop, { client: s, received: snooped });
    expect(await pending).toBe(504);
  });
});
