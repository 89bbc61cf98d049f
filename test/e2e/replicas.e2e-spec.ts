import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { Client } from 'pg';
import request from 'supertest';
import {
  birthMetrics,
  decodeKuraPayload,
  encodeKuraPayload,
  parseTopic,
  readStatusReport,
  Topics,
  VPN_APP_ID,
  type VpnStatusReport,
} from '@app/protocol';
import { startPrivateMosquitto, type PrivateMosquitto } from '../support/mosquitto';
import { bearer, login } from '../support/http';
import { createTenant } from '../support/factories';
import {
  createDeviceWithCredentials,
  type DeviceWithCredentials,
  getVpnStatus,
} from '../support/device-factories';
import { type ApiProcess, ProcessGroup, startApiProcess, startFleetProcess } from '../support/processes';
import { eventually, holds } from '../support/eventually';

const DEVICES = 20;
/** Short lease for the test; production defaults are 5000 / 20000 (docs/scale-out.md). */
const HEARTBEAT_MS = 300;
const LEASE_MS = 1500;
/** What the simulated driver takes to bring a tunnel up: long enough to kill a replica mid-command. */
const CONNECT_DELAY_MS = 400;

/**
 * Two API processes on one database and one external Mosquitto, sharing lifecycle and status
 * through `$share/{MQTT_SHARED_GROUP}/…`, with 20 simulated devices: commands through both at
 * once, each message ingested once, then one replica SIGKILLed under load (docs/scale-out.md).
 */
describe('several API replicas on one broker and one database', () => {
  const procs = new ProcessGroup();
  let broker: PrivateMosquitto;
  let a: ApiProcess;
  let b: ApiProcess;
  let token: string;
  let devices: DeviceWithCredentials[];
  let credentialsDir: string | undefined;
  let wire: MqttClient | undefined;
  let db: Client | undefined;
  /** Every status report the devices published, as the broker delivered it to a plain subscriber. */
  const published: Array<{ clientId: string; report: VpnStatusReport }> = [];
  const births = new Map<string, number>();

  const command = (api: ApiProcess, device: DeviceWithCredentials, verb: 'connect' | 'disconnect') =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/_${verb}?timeout=20000`).set(bearer(token));
  const metric = async (api: ApiProcess, line: RegExp): Promise<number> => {
    const res = await request(api.url).get('/metrics');
    const match = res.text.split('\n').find((l) => line.test(l));
    return match ? Number(match.split(' ').pop()) : 0;
  };
  const ingested = (api: ApiProcess) => metric(api, /^vpn_status_reports_ingested_total /);
  const instanceOf = async (api: ApiProcess): Promise<string> => {
    const rows = await db!.query<{ id: string }>('SELECT id FROM api_instance WHERE mqtt_client_id = $1', [
      api.env.MQTT_CLIENT_ID,
    ]);
    if (rows.rows.length !== 1)
      throw new Error(`instance of ${api.env.MQTT_CLIENT_ID}: ${rows.rows.length} rows`);
    return rows.rows[0].id;
  };
  const lastReport = (clientId: string): VpnStatusReport | undefined =>
    published.filter((p) => p.clientId === clientId).at(-1)?.report;

  beforeAll(async () => {
    broker = await startPrivateMosquitto();
    const shared = {
      MQTT_URL: broker.url,
      MQTT_BROKER_KIND: 'external-open',
      MQTT_CLEAN_SESSION: 'true',
      MQTT_SHARED_GROUP: `replicas-${randomBytes(4).toString('hex')}`,
      // One secret for both: a token signed by one replica is good on the other.
      JWT_SECRET: randomBytes(32).toString('hex'),
      INSTANCE_HEARTBEAT_MS: String(HEARTBEAT_MS),
      INSTANCE_LEASE_MS: String(LEASE_MS),
    };
    a = procs.api(await startApiProcess(shared));
    b = procs.api(await startApiProcess(shared, { database: a.db }));
    db = new Client({ connectionString: a.db!.url });
    await db.connect();

    const tenant = await createTenant(a, await login(a));
    token = tenant.admin.token;
    devices = await Promise.all(Array.from({ length: DEVICES }, () => createDeviceWithCredentials(a, token)));

    wire = connect(broker.url, { clientId: `wire-${randomBytes(4).toString('hex')}`, clean: true });
    wire.on('message', (topic, payload) => {
      const parsed = parseTopic(topic);
      if (parsed?.kind === 'birth') births.set(parsed.clientId, (births.get(parsed.clientId) ?? 0) + 1);
      if (parsed?.kind !== 'status') return;
      const report = readStatusReport(decodeKuraPayload(payload));
      if (report) published.push({ clientId: parsed.clientId, report });
    });
    await new Promise<void>((resolve) => wire!.once('connect', () => resolve()));
    await wire.subscribeAsync(
      [`${tenant.account.name}/+/${VPN_APP_ID}/status`, `$EDC/${tenant.account.name}/+/MQTT/BIRTH`],
      { qos: 1 },
    );

    credentialsDir = mkdtempSync(join(tmpdir(), 'vpncloud-e2e-replicas-'));
    const credentialsFile = join(credentialsDir, 'credentials.json');
    writeFileSync(credentialsFile, JSON.stringify(devices.map((d) => d.credentials)), { mode: 0o600 });
    procs.agent(
      await startFleetProcess({
        broker: broker.url,
        account: tenant.account.name,
        credentialsFile,
        count: DEVICES,
        args: ['--connect-delay-ms', String(CONNECT_DELAY_MS), '--reconnect-period-ms', '200'],
      }),
    );
    // Read through the other replica: the devices' BIRTHs reached one database.
    await eventually(
      async () =>
        holds(
          `all ${DEVICES} devices to be CONNECTED`,
          await (async () => {
            const res = await request(b.url)
              .get('/v1/_/devices?connectionStatus=CONNECTED&limit=100')
              .set(bearer(token));
            return res.body.size as number;
          })(),
          (connected) => connected === DEVICES,
        ),
      30_000,
      100,
    );
  }, 180_000);

  afterAll(async () => {
    await wire?.endAsync(true);
    await db?.end();
    // Agents first; the survivor stops before the database both share is dropped.
    await procs.stopAll();
    await broker?.destroy();
    if (credentialsDir) rmSync(credentialsDir, { recursive: true, force: true });
  });

  it('should complete commands sent through both replicas at once, each answered by the replica that asked', async () => {
    const replicaOf = (i: number) => (i % 2 === 0 ? a : b);
    const before = {
      a: await metric(a, /^vpn_commands_total\{verb="connect",outcome="completed"\}/),
      b: await metric(b, /^vpn_commands_total\{verb="connect",outcome="completed"\}/),
    };
    const connects = await Promise.all(devices.map((d, i) => command(replicaOf(i), d, 'connect')));
    connects.forEach((res, i) =>
      expect({ device: i, status: res.status, body: res.body }).toMatchObject({
        status: 200,
        body: { connected: true, ipAddress: devices[i].tunnelAddress },
      }),
    );
    // Each replica counted exactly the commands it sent: no reply went to the other one.
    expect(await metric(a, /^vpn_commands_total\{verb="connect",outcome="completed"\}/)).toBe(
      before.a + DEVICES / 2,
    );
    expect(await metric(b, /^vpn_commands_total\{verb="connect",outcome="completed"\}/)).toBe(
      before.b + DEVICES / 2,
    );
    // And the other way round, through the other replica.
    const disconnects = await Promise.all(devices.map((d, i) => command(replicaOf(i + 1), d, 'disconnect')));
    expect(disconnects.map((r) => r.status)).toEqual(devices.map(() => 200));
    const ops = await db!.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM device_operation WHERE device_id = ANY($1::uuid[]) GROUP BY status`,
      [devices.map((d) => d.id)],
    );
    expect(ops.rows).toEqual([{ status: 'COMPLETED', n: 2 * DEVICES }]);
  });

  it('should ingest every lifecycle and status message once, spread over both replicas', async () => {
    // The replica that started first took the lifecycle topics; the other did not.
    const leaders = [a, b].filter((api) => api.lines.some((l) => l.includes('is now the leader')));
    expect(leaders).toEqual([a]);
    // One BIRTH per device on the wire, one BIRTH event per device in the database.
    expect([...births.values()]).toEqual(devices.map(() => 1));
    const birthEvents = await db!.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM device_event WHERE type = 'BIRTH' AND device_id = ANY($1::uuid[]) GROUP BY device_id`,
      [devices.map((d) => d.id)],
    );
    expect(birthEvents.rows.map((r) => r.n)).toEqual(devices.map(() => 1));

    // Every status report went to exactly one replica: the two tallies add up to what was published.
    const total = await eventually(
      async () =>
        holds(
          'both replicas to have ingested every published status report',
          await (async () => (await ingested(a)) + (await ingested(b)))(),
          (n) => n >= published.length,
        ),
      15_000,
      100,
    );
    expect(total).toBe(published.length);
    expect(await ingested(a)).toBeGreaterThan(0);
    expect(await ingested(b)).toBeGreaterThan(0);
    // The same report stored twice would show as two equal VPN_STATUS events of one seq.
    const duplicates = await db!.query(
      `SELECT device_id, details->>'bootId', details->>'seq', count(*) FROM device_event
        WHERE type = 'VPN_STATUS' AND device_id = ANY($1::uuid[])
        GROUP BY 1, 2, 3 HAVING count(*) > 1`,
      [devices.map((d) => d.id)],
    );
    expect(duplicates.rows).toEqual([]);
  });

  it('should fail the killed replica’s callers, close its RUNNING operations within lease + heartbeat, and converge on the survivor', async () => {
    const victim = a;
    const survivor = b;
    const victimInstance = await instanceOf(victim);
    const onVictim = devices.slice(0, DEVICES / 2);
    const onSurvivor = devices.slice(DEVICES / 2);

    // Load: every device gets connect/disconnect in turn, half through each replica. A caller of the
    // victim that loses its connection moves to the survivor, as behind a load balancer.
    let killed = false;
    let stopLoad = false;
    const victimErrors: string[] = [];
    const loadFailures: string[] = [];
    const afterKill = new Map<string, number[]>();
    const worker = async (device: DeviceWithCredentials, first: ApiProcess) => {
      let api = first;
      let verb: 'connect' | 'disconnect' = 'connect';
      while (!stopLoad) {
        const wasKilled = killed;
        try {
          const res = await command(api, device, verb);
          if (wasKilled) afterKill.set(device.id, [...(afterKill.get(device.id) ?? []), res.status]);
          if (res.status === 200) verb = verb === 'connect' ? 'disconnect' : 'connect';
          // 409: the device's command on the dead replica still holds it until the lease expires.
          else if (res.status === 409) await new Promise((r) => setTimeout(r, 50));
          else throw new Error(`${device.clientId}: ${res.status} ${JSON.stringify(res.body)}`);
        } catch (err) {
          if (api !== victim) {
            loadFailures.push((err as Error).message);
            return;
          }
          victimErrors.push((err as NodeJS.ErrnoException).code ?? (err as Error).message);
          api = survivor;
        }
      }
    };
    const load = [...onVictim.map((d) => worker(d, victim)), ...onSurvivor.map((d) => worker(d, survivor))];

    const runningOnVictim = () =>
      db!
        .query<{ id: string }>(
          `SELECT id FROM device_operation WHERE status = 'RUNNING' AND instance_id = $1`,
          [victimInstance],
        )
        .then((r) => r.rows.map((row) => row.id));
    const interrupted = await eventually(
      async () => holds('commands RUNNING on the victim', await runningOnVictim(), (ids) => ids.length >= 3),
      15_000,
      100,
    );
    const killedAt = Date.now();
    await victim.stop('SIGKILL');
    killed = true;

    // Closed by the survivor's reaper once the lease has expired, and no sooner.
    await eventually(
      async () =>
        holds('the victim’s operations to be closed', await runningOnVictim(), (ids) => ids.length === 0),
      15_000,
      50,
    );
    const closed = await db!.query<{ id: string; error_message: string; ended_ms: string }>(
      `SELECT id, error_message, (extract(epoch FROM ended_on) * 1000)::bigint::text AS ended_ms
         FROM device_operation WHERE id = ANY($1::uuid[])`,
      [interrupted],
    );
    const closedAfterMs = closed.rows.map((r) => Number(r.ended_ms) - killedAt);
    const reaped = closed.rows.filter((r) => r.error_message.includes('lease'));
    // Any of them may have finished normally in the instant before the kill; the rest were reaped.
    expect(reaped.length).toBeGreaterThan(0);
    for (const row of reaped) {
      expect(row.error_message).toBe('Interrupted: its API instance stopped renewing its lease');
      const after = Number(row.ended_ms) - killedAt;
      // The lease runs out at most LEASE_MS after the kill and the survivor reaps once a heartbeat;
      // the slack is for a busy machine.
      expect(after).toBeLessThanOrEqual(LEASE_MS + HEARTBEAT_MS + 2000);
    }
    expect((await db!.query('SELECT 1 FROM api_instance WHERE id = $1', [victimInstance])).rows).toEqual([]);
    expect((await db!.query('SELECT 1 FROM api_instance')).rows).toHaveLength(1);

    // The victim started first and took the lifecycle topics; the survivor has them now.
    await survivor.waitFor('is now the leader', HEARTBEAT_MS + 5000);
    const newcomer = await createDeviceWithCredentials(survivor, token);
    const birth = encodeKuraPayload({ timestamp: Date.now(), metrics: birthMetrics({ applicationIds: [] }) });
    await wire!.publishAsync(Topics.birth(newcomer.credentials.account, newcomer.clientId), birth, {
      qos: 1,
    });
    await eventually(
      async () =>
        holds(
          'the survivor to take the lifecycle topics and apply a BIRTH',
          await (() => request(survivor.url).get(`/v1/_/devices/${newcomer.id}`).set(bearer(token)))(),
          (res) => res.body.connectionStatus === 'CONNECTED',
        ),
      15_000,
      100,
    );

    // Every device, those of the victim included, takes commands again through the survivor.
    await eventually(
      async () =>
        holds(
          'a completed command through the survivor for every device after the kill',
          await (async () => devices.filter((d) => (afterKill.get(d.id) ?? []).includes(200)).length)(),
          (n) => n === DEVICES,
        ),
      30_000,
      100,
    );
    stopLoad = true;
    await Promise.all(load);
    expect(loadFailures).toEqual([]);
    // The victim's callers in flight at the kill got a connection error, not an answer.
    expect(victimErrors.length).toBeGreaterThan(0);
    expect(victimErrors.every((e) => /ECONNRESET|ECONNREFUSED|socket hang up/.test(e))).toBe(true);

    // Stored statuses converge on what each agent last reported.
    for (const d of devices) {
      await eventually(
        async () =>
          holds(
            `${d.clientId}: stored status to match its last report (${JSON.stringify(lastReport(d.clientId))})`,
            await (() => getVpnStatus(survivor, token, '_', d.id))(),
            (s) => {
              const truth = lastReport(d.clientId);
              return (
                truth !== undefined &&
                s.connected === truth.connected &&
                s.ipAddress === truth.ipAddress &&
                s.status === truth.status
              );
            },
          ),
        10_000,
        100,
      );
    }
    expect(await runningOnVictim()).toEqual([]);
    const stillRunning = await db!.query(
      `SELECT 1 FROM device_operation WHERE status = 'RUNNING' AND device_id = ANY($1::uuid[])`,
      [devices.map((d) => d.id)],
    );
    expect(stillRunning.rows).toEqual([]);
    console.log(
      JSON.stringify({
        replicaKilled: {
          runningAtKill: interrupted.length,
          reaped: reaped.length,
          closedAfterMs: closedAfterMs.sort((x, y) => x - y),
          leaseMs: LEASE_MS,
          heartbeatMs: HEARTBEAT_MS,
          victimCallerErrors: victimErrors.length,
          conflictsAfterKill: [...afterKill.values()].flat().filter((s) => s === 409).length,
        },
      }),
    );
  });
});
