import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { readStatusReport, sentOnOf, Topics, VPN_APP_ID } from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { retryTransient } from '../common/transient-retry';
import { CloudMqttClient } from '../mqtt/cloud-mqtt.client';
import { KuraRequestClient, KuraRequestError } from '../mqtt/kura-request.client';
import { DeviceLifecycleHandler } from '../devices/device-lifecycle.handler';
import { DevicesRepository } from '../devices/devices.repository';
import { VpnStatusStore } from './vpn-status.store';

const PAGE = 500;

/**
 * How far before the link was lost the resync also asks devices that went MISSING or DISCONNECTED:
 * a broker that shuts down publishes its clients' wills just before the cloud's own connection
 * drops, and the cloud's clock may differ from the database's by a little.
 */
const LINK_LOSS_LOOKBACK_MS = 30_000;

/** What one resync found; logged at its end and kept for health and tests. */
export interface ResyncSummary {
  startedOn: Date;
  finishedOn: Date | null;
  asked: number;
  /** Answered: CONNECTED, and the status from the reply stored. */
  confirmed: number;
  /** No answer and nothing heard: marked MISSING. */
  missing: number;
  /** Dropped off or heard from otherwise during the request: nothing to do. */
  other: number;
}

/**
 * Connection truth after a fault (docs/protocol.md, "Connection truth"). While the cloud is away
 * (an API restart, a broker restart or reconnect) lifecycle messages and status reports can be
 * lost: a device may have gone, or changed its status, without the database hearing of it. After
 * every (re)connect of the cloud's MQTT client this asks every device stored as CONNECTED for its
 * status (`GET/status` through the Kura request client), RESYNC_CONCURRENCY requests in flight
 * at most, each waiting RESYNC_TIMEOUT_MS. A reply proves the device CONNECTED and its status
 * metrics are stored under the usual ordering rule; a device that does not answer and sent no
 * lifecycle message since the resync began is marked MISSING — what its LWT would have said.
 * A new connect starts a new resync; the one running stops at its next request.
 */
@Injectable()
export class ConnectionResync implements OnModuleInit {
  private readonly logger = new Logger('ConnectionResync');
  private generation = 0;
  /** The last resync, running or finished. */
  last: ResyncSummary | null = null;

  constructor(
    private readonly mqtt: CloudMqttClient,
    private readonly requests: KuraRequestClient,
    private readonly devices: DevicesRepository,
    private readonly lifecycle: DeviceLifecycleHandler,
    private readonly store: VpnStatusStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.mqtt.onSubscribed((linkLostAt) => {
      const changedSince = linkLostAt && new Date(linkLostAt.getTime() - LINK_LOSS_LOOKBACK_MS);
      void this.run(changedSince).catch((err: unknown) =>
        this.logger.error({ err }, 'connection resync failed'),
      );
    });
  }

  /**
   * Runs one resync (a running one stops); resolves with its summary. With `changedSince`, it also
   * asks the devices that went MISSING or DISCONNECTED since then: a device the broker reported
   * gone while going down may be back already, its BIRTH published before the cloud subscribed.
   * Those are only ever made CONNECTED by an answer, never changed by silence.
   */
  async run(changedSince: Date | null = null): Promise<ResyncSummary> {
    const generation = ++this.generation;
    const summary: ResyncSummary = {
      startedOn: new Date(),
      finishedOn: null,
      asked: 0,
      confirmed: 0,
      missing: 0,
      other: 0,
    };
    this.last = summary;
    const since = await retryTransient(() => this.devices.databaseNow());
    const { concurrency } = this.config.resync;
    const inFlight = new Set<Promise<void>>();
    let after: string | null = null;
    let stopped = false;
    while (!stopped) {
      const page = await retryTransient(() => this.devices.pageForResync(after, PAGE, changedSince));
      for (const device of page) {
        while (inFlight.size >= concurrency) await Promise.race(inFlight);
        if (generation !== this.generation || !this.mqtt.connected) {
          stopped = true;
          break;
        }
        summary.asked++;
        const p: Promise<void> = this.ask(device, since, summary).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1].id;
    }
    await Promise.all(inFlight);
    summary.finishedOn = new Date();
    this.logger.log(
      {
        ...summary,
        ms: summary.finishedOn.getTime() - summary.startedOn.getTime(),
        interrupted: stopped,
      },
      'connection resync done',
    );
    return summary;
  }

  private async ask(
    device: { id: string; account: string; clientId: string },
    since: Date,
    summary: ResyncSummary,
  ): Promise<void> {
    const { account, clientId } = device;
    try {
      const reply = await this.requests.request({
        topic: Topics.command(account, clientId, 'status'),
        account,
        app: VPN_APP_ID,
        targetId: device.id,
        deadline: Date.now() + this.config.resync.timeoutMs,
      });
      this.lifecycle.presenceProven(account, clientId, 'status reply');
      const report = readStatusReport(reply);
      if (report) {
        await retryTransient(() =>
          this.store.applyMany([{ account, clientId, report, sentOn: sentOnOf(reply) }]),
        );
      }
      summary.confirmed++;
    } catch (err) {
      if (err instanceof KuraRequestError && err.reason === 'timeout') {
        if (await this.lifecycle.silent(account, clientId, since)) summary.missing++;
        else summary.other++;
        return;
      }
      // Dropped off meanwhile (its new state is already stored), the broker went away (the next
      // connect resyncs again), or shutdown.
      summary.other++;
      if (!(err instanceof KuraRequestError)) {
        this.logger.warn({ err, account, clientId }, 'connection resync of a device failed');
      }
    }
  }
}
