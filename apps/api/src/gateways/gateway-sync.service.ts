import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
} from '@nestjs/common';
import {
  encodeGatewayApply,
  encodeGatewaySync,
  GATEWAY_APP_ID,
  GATEWAY_SERIAL_GAP,
  MAX_PEERS_PER_MESSAGE,
  readGatewayReply,
  ResponseCodes,
  Topics,
  type GatewayCommand,
  type GatewayReply,
} from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { ConnectionEvents } from '../mqtt/connection-events';
import { KuraRequestClient, KuraRequestError } from '../mqtt/kura-request.client';
import { GatewayPeerRepository, type PeerChange } from './gateway-peer.repository';
import { GatewayRepository, type GatewaySyncState } from './gateway.repository';

/** How long one sync chunk or change set may wait for the gateway's reply. */
const REQUEST_TIMEOUT_MS = 15_000;
/** Rounds of one publishing turn; each round sends one full sync or one change set. */
const MAX_ROUNDS = 20;
/** How often a wait for an acknowledgement re-reads the database (another instance may publish). */
const ACK_POLL_MS = 200;

interface Waiter {
  serial: number;
  resolve(): void;
  reject(err: AppError): void;
}

/**
 * Makes every gateway hold its desired state. One publisher per gateway at a time, across API
 * instances (a session-level Postgres advisory lock held for the turn): after a gateway's BIRTH
 * it sends the full state in chunks of ≤ 500 peers; afterwards the changes since the serial the
 * gateway acknowledged, merged into one change set. A gateway that reports a gap gets a full
 * sync. Callers that changed the desired state wait until the gateway acknowledged a serial at
 * or above their change (`waitApplied`).
 */
@Injectable()
export class GatewaySyncService implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('GatewaySync');
  private readonly turns = new Map<string, Promise<void>>();
  private readonly kickedDuringTurn = new Set<string>();
  private readonly waiters = new Map<string, Waiter[]>();
  private pollTimer?: NodeJS.Timeout;
  private stopConnectionWatch?: () => void;
  private stopping = false;

  constructor(
    private readonly gateways: GatewayRepository,
    private readonly peers: GatewayPeerRepository,
    private readonly requests: KuraRequestClient,
    private readonly connections: ConnectionEvents,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.stopConnectionWatch = this.connections.subscribe((change) => {
      if (change.kind !== 'gateway') return;
      if (change.status === 'CONNECTED') this.kick(change.id);
      else this.rejectWaiters(change.id, unavailable(`The gateway went ${change.status}`));
    });
  }

  /** Gateways that lagged behind while no instance ran (or whose turn failed) catch up. */
  onApplicationBootstrap(): void {
    void this.kickLagging();
  }

  beforeApplicationShutdown(): void {
    this.stopping = true;
    this.stopConnectionWatch?.();
    clearInterval(this.pollTimer);
    for (const id of this.waiters.keys()) {
      this.rejectWaiters(
        id,
        new AppError('SERVICE_UNAVAILABLE', 'Service shutting down', 'Retry the command'),
      );
    }
  }

  /** Every gateway connected to the broker whose acknowledged state lags behind gets a turn. */
  async kickLagging(): Promise<void> {
    if (this.stopping) return;
    try {
      for (const id of await this.gateways.lagging()) this.kick(id);
    } catch (err) {
      this.logger.error({ err }, 'listing lagging gateways failed');
    }
  }

  /** Kicks the publisher of each changed gateway. */
  publish(changes: readonly PeerChange[]): void {
    for (const c of changes) this.kick(c.gatewayId);
  }

  /** Starts a publishing turn for the gateway, or asks the running one to look again when it ends. */
  kick(gatewayId: string): void {
    if (this.stopping) return;
    if (this.turns.has(gatewayId)) {
      this.kickedDuringTurn.add(gatewayId);
      return;
    }
    const turn = this.turn(gatewayId)
      .catch((err: unknown) => this.logger.error({ err, gatewayId }, 'publishing to the gateway failed'))
      .finally(() => {
        this.turns.delete(gatewayId);
        if (this.kickedDuringTurn.delete(gatewayId)) this.kick(gatewayId);
      });
    this.turns.set(gatewayId, turn);
  }

  /**
   * Resolves once the gateway acknowledged `serial` or a later one; rejects with 503
   * GATEWAY_UNAVAILABLE when it drops off, 504 GATEWAY_TIMEOUT at the deadline.
   */
  async waitApplied(gatewayId: string, serial: number, deadline: number): Promise<void> {
    let waiter: Waiter | undefined;
    const done = new Promise<void>((resolve, reject) => {
      waiter = { serial, resolve, reject };
      this.waiters.set(gatewayId, [...(this.waiters.get(gatewayId) ?? []), waiter]);
    });
    this.ensurePolling();
    // The acknowledgement may have come before the waiter was registered.
    await this.checkWaiters(gatewayId);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => {
          if (waiter) this.dropWaiter(gatewayId, waiter);
          reject(
            new AppError(
              'GATEWAY_TIMEOUT',
              'Gateway did not confirm in time',
              'The gateway did not acknowledge the peer change before the timeout',
            ),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
    });
    try {
      await Promise.race([done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async turn(gatewayId: string): Promise<void> {
    // null: another instance publishes to this gateway now; waiters here see its acknowledgement by polling.
    const finished = await this.gateways.withPublisherLock(gatewayId, async () => {
      for (let round = 0; round < MAX_ROUNDS && !this.stopping; round++) {
        const state = await this.gateways.syncState(gatewayId);
        if (!state || state.connectionStatus !== 'CONNECTED') return false;
        if (state.appliedSerial >= 0 && state.appliedSerial >= state.desiredSerial) return true;
        if (!(await this.round(state))) return false;
      }
      return false;
    });
    // A change committed by another instance while this turn held the lock found it taken:
    // look once more now that it is free, so the change is never left waiting for the sweep.
    if (finished) {
      const after = await this.gateways.syncState(gatewayId);
      if (after?.connectionStatus === 'CONNECTED' && after.appliedSerial < after.desiredSerial) {
        this.kickedDuringTurn.add(gatewayId);
      }
    }
  }

  /** One full sync or one change set; false when the gateway did not take it (try again later). */
  private async round(state: GatewaySyncState): Promise<boolean> {
    if (state.appliedSerial >= 0) {
      const changes = await this.peers.changesSince(state.id, state.appliedSerial);
      if (changes) {
        const reply = await this.send(
          state,
          'apply',
          encodeGatewayApply({
            serial: changes.serial,
            previous: changes.previous,
            addresses: changes.addresses,
            upsert: changes.peers,
            remove: changes.remove,
          }),
        );
        if (reply?.code === ResponseCodes.OK) return this.applied(state.id, changes.serial, false);
        if (reply?.code === GATEWAY_SERIAL_GAP) {
          this.logger.warn(
            { gatewayId: state.id, holds: reply.serial, expected: changes.previous },
            'gateway reported a serial gap; sending a full sync',
          );
          await this.gateways.markNeedsFullSync(state.id);
          return true;
        }
        return false;
      }
    }
    return this.fullSync(state);
  }

  private async fullSync(state: GatewaySyncState): Promise<boolean> {
    const desired = await this.peers.fullState(state.id);
    const chunks = Math.max(1, Math.ceil(desired.peers.length / MAX_PEERS_PER_MESSAGE));
    for (let chunk = 0; chunk < chunks; chunk++) {
      const reply = await this.send(
        state,
        'sync',
        encodeGatewaySync({
          serial: desired.serial,
          chunk,
          last: chunk === chunks - 1,
          addresses: desired.addresses,
          peers: desired.peers.slice(chunk * MAX_PEERS_PER_MESSAGE, (chunk + 1) * MAX_PEERS_PER_MESSAGE),
        }),
      );
      if (reply?.code !== ResponseCodes.OK) return false;
    }
    this.logger.log(
      { gatewayId: state.id, serial: desired.serial, peers: desired.peers.length, chunks },
      'gateway synced in full',
    );
    return this.applied(state.id, desired.serial, true);
  }

  private async applied(gatewayId: string, serial: number, full: boolean): Promise<true> {
    await this.gateways.markApplied(gatewayId, serial, full);
    this.resolveWaiters(gatewayId, serial);
    return true;
  }

  private async send(
    state: GatewaySyncState,
    command: GatewayCommand,
    body: Buffer,
  ): Promise<GatewayReply | null> {
    try {
      const raw = await this.requests.request({
        topic: Topics.gatewayCommand(state.account, state.name, command),
        account: state.account,
        app: GATEWAY_APP_ID,
        targetId: state.id,
        deadline: Date.now() + REQUEST_TIMEOUT_MS,
        payload: { metrics: [], body },
      });
      const reply = readGatewayReply(raw);
      if (!reply)
        this.logger.warn({ gatewayId: state.id, command }, 'gateway reply without response.code or serial');
      else if (reply.code !== ResponseCodes.OK && reply.code !== GATEWAY_SERIAL_GAP) {
        this.logger.error(
          { gatewayId: state.id, command, code: reply.code, error: reply.exceptionMessage },
          'gateway refused the peer change',
        );
      }
      return reply;
    } catch (err) {
      if (!(err instanceof KuraRequestError)) throw err;
      this.logger.warn(
        { gatewayId: state.id, command, reason: err.reason },
        `gateway request failed: ${err.message}`,
      );
      return null;
    }
  }

  private ensurePolling(): void {
    if (this.pollTimer || this.stopping) return;
    this.pollTimer = setInterval(() => {
      if (this.waiters.size === 0) {
        clearInterval(this.pollTimer);
        this.pollTimer = undefined;
        return;
      }
      for (const id of this.waiters.keys()) void this.checkWaiters(id);
    }, ACK_POLL_MS);
    this.pollTimer.unref();
  }

  private async checkWaiters(gatewayId: string): Promise<void> {
    try {
      const state = await this.gateways.syncState(gatewayId);
      if (!state) return this.rejectWaiters(gatewayId, AppError.notFound('Gateway'));
      if (state.appliedSerial >= 0) this.resolveWaiters(gatewayId, state.appliedSerial);
      // An offline gateway confirms nothing until it is back: waiting out the deadline helps no one.
      if (state.connectionStatus !== 'CONNECTED') {
        this.rejectWaiters(gatewayId, unavailable(`The gateway is ${state.connectionStatus}`));
      }
    } catch (err) {
      this.logger.warn({ err, gatewayId }, 'reading the gateway state failed');
    }
  }

  private resolveWaiters(gatewayId: string, applied: number): void {
    const list = this.waiters.get(gatewayId);
    if (!list) return;
    const waiting = list.filter((w) => {
      if (w.serial > applied) return true;
      w.resolve();
      return false;
    });
    if (waiting.length > 0) this.waiters.set(gatewayId, waiting);
    else this.waiters.delete(gatewayId);
  }

  private rejectWaiters(gatewayId: string, err: AppError): void {
    const list = this.waiters.get(gatewayId) ?? [];
    this.waiters.delete(gatewayId);
    for (const w of list) w.reject(err);
  }

  private dropWaiter(gatewayId: string, waiter: Waiter): void {
    const list = (this.waiters.get(gatewayId) ?? []).filter((w) => w !== waiter);
    if (list.length > 0) this.waiters.set(gatewayId, list);
    else this.waiters.delete(gatewayId);
  }
}

export function unavailable(details: string): AppError {
  return new AppError('GATEWAY_UNAVAILABLE', 'Gateway unavailable', details);
}
