// The heart of the VPN client: who holds it (the active request and its controller), the connect
// flow step by step, the keepalive of the session, and tearing everything down again. One
// request at a time; the HTTP layer only translates its answers.
import { EventEmitter } from 'node:events';

import { SerialQueue, StatusCodes } from '@app/protocol';

import { CloudClient, CloudError, Credentials } from './cloud-client';
import type { TunnelPort } from './client-tunnel';
import { VpnSession, parseSession } from './session';
import type { ClientSettings } from './settings';
import { ActiveRequest, ClientStatus, Step, StepName, idleStatus, initialSteps } from './status';
import { StepError, StepFailure, classifyFailure } from './step-codes';
import { Logger, errorFields } from '@app/edge';

export type CloudPort = Pick<
  CloudClient,
  'authInfo' | 'loginApiKey' | 'connectDeviceVpn' | 'openSession' | 'pingSession' | 'closeSession'
>;

export interface ConnectRequest {
  agentId: string;
  companyId: string;
  controllerIdentifier: string;
  /** A cloud access token or an API key; kept in memory only, never logged or shown. */
  accessToken: string;
  sector: string | undefined;
}

export type ConnectOutcome =
  | { kind: 'started'; status: ClientStatus }
  | { kind: 'unchanged'; status: ClientStatus }
  | { kind: 'conflict'; reason: string; activeRequest: ActiveRequest }
  | { kind: 'closed' };

export interface ConnectionManagerDeps {
  cloud: CloudPort;
  tunnel: TunnelPort;
  publicKey: string;
  settings: () => ClientSettings;
  logger: Logger;
}

/** One connect request from its start to its teardown. */
interface Attempt {
  request: ConnectRequest;
  view: ActiveRequest;
  /** Aborted by a disconnect, a switch to another device or the cloud ending the session. */
  abort: AbortController;
  credentials?: Credentials;
  /** Epoch ms after which the access token is no use (undefined: unknown, try it). */
  tokenExpiresAt?: number;
  /** Set as soon as the cloud named it, so a failure later (even a bad session body) deletes it. */
  sessionId?: string;
  session?: VpnSession;
  /** The interface may exist: set before creating it, cleared once removed. */
  interfaceTouched: boolean;
  connected: boolean;
  keepalive?: NodeJS.Timeout;
  /** The disconnect under way, shared by everyone who asks for it meanwhile. */
  ending?: Promise<void>;
}

const DEVICE_PING_RETRY_MS = 250;
const CLOSE_SESSION_TIMEOUT_MS = 5000;
/** A token this close to expiry is not worth a DELETE that would come back 401. */
const TOKEN_EXPIRY_MARGIN_MS = 5000;

/** Emits `change` with the new status after every change, for the WebSocket. */
export class ConnectionManager extends EventEmitter<{ change: [ClientStatus] }> {
  private state: ClientStatus = idleStatus();
  private attempt: Attempt | undefined;
  /** Flows and teardowns never overlap: a new interface only comes up after the old one is gone. */
  private readonly queue = new SerialQueue();
  private closed = false;

  constructor(private readonly deps: ConnectionManagerDeps) {
    super();
  }

  status(): ClientStatus {
    return structuredClone(this.state);
  }

  /**
   * Decides at once (the HTTP answer must not wait for the flow): another controller gets a
   * conflict while a request is active; the holder may retry after an error or switch devices.
   */
  connect(request: ConnectRequest): ConnectOutcome {
    if (this.closed) return { kind: 'closed' };
    const current = this.attempt;
    if (current !== undefined && this.state.activeRequest !== '') {
      if (current.request.controllerIdentifier !== request.controllerIdentifier) {
        return {
          kind: 'conflict',
          reason: 'another controller is using the VPN client; it (or anyone) must disconnect first',
          activeRequest: { ...current.view },
        };
      }
      if (this.state.status === 'disconnecting') {
        return {
          kind: 'conflict',
          reason: 'a disconnect is in progress; connect again once the status is idle',
          activeRequest: { ...current.view },
        };
      }
      const sameTarget =
        current.request.agentId === request.agentId && current.request.companyId === request.companyId;
      if (sameTarget && this.state.status !== 'error') return { kind: 'unchanged', status: this.status() };
      if (this.state.status !== 'error') {
        this.deps.logger.info({ from: current.view.agentId, to: request.agentId }, 'switching device');
        this.abandon(current);
      }
    }
    return { kind: 'started', status: this.start(request) };
  }

  /** Anyone may disconnect (IXON's rule): ends the request, whatever state it is in. */
  async disconnect(): Promise<ClientStatus> {
    const attempt = this.attempt;
    if (attempt === undefined || this.state.activeRequest === '') {
      // Still wait for a teardown in flight (e.g. after a failed disconnect) before answering.
      await this.queue.drained();
      if (this.attempt === attempt && this.state.status !== 'idle') this.setState(idleStatus());
      return this.status();
    }
    if (attempt.ending === undefined) {
      if (this.state.status !== 'error') {
        this.setState({ ...this.state, status: 'disconnecting', statusCode: StatusCodes.PENDING });
      }
      this.deps.logger.info({ agentId: attempt.view.agentId }, 'disconnecting');
      attempt.abort.abort(new Error('disconnected'));
      attempt.ending = this.queue.run(async () => {
        const failure = await this.teardown(attempt);
        if (this.attempt !== attempt) return;
        this.attempt = undefined;
        if (failure === undefined) {
          this.setState(idleStatus());
          this.deps.logger.info({}, 'disconnected');
        } else {
          this.setState({
            status: 'error',
            activeRequest: '',
            statusCode: failure.code,
            steps: [{ name: failure.step, code: failure.code, message: failure.message }],
          });
        }
      });
    }
    await attempt.ending;
    return this.status();
  }

  /** For shutdown: no new requests, and the current one is torn down. */
  async close(): Promise<void> {
    this.closed = true;
    await this.disconnect();
    await this.queue.drained();
  }

  private start(request: ConnectRequest): ClientStatus {
    const view: ActiveRequest = {
      agentId: request.agentId,
      companyId: request.companyId,
      controllerIdentifier: request.controllerIdentifier,
      startedOn: new Date().toISOString(),
    };
    const attempt: Attempt = {
      request,
      view,
      abort: new AbortController(),
      interfaceTouched: false,
      connected: false,
    };
    this.attempt = attempt;
    this.setState({
      status: 'connecting',
      activeRequest: view,
      statusCode: StatusCodes.PENDING,
      steps: initialSteps(),
    });
    this.deps.logger.info(
      { agentId: view.agentId, companyId: view.companyId, controller: view.controllerIdentifier },
      'connect requested',
    );
    void this.queue.run(() => this.runFlow(attempt));
    return this.status();
  }

  /** Stops an attempt that is being replaced; its teardown runs before the next flow. */
  private abandon(attempt: Attempt): void {
    attempt.abort.abort(new Error('replaced by another connect'));
    void this.queue.run(async () => {
      await this.teardown(attempt);
    });
  }

  /** Never rejects: a failure becomes the error status, after everything it set up is gone. */
  private async runFlow(attempt: Attempt): Promise<void> {
    const { signal } = attempt.abort;
    const { cloud, tunnel, logger } = this.deps;
    const { agentId, companyId } = attempt.request;
    const settings = this.deps.settings();
    let step: StepName = 'sign-in';
    try {
      signal.throwIfAborted();
      this.stepUpdate(attempt, step, StatusCodes.PENDING);
      const credentials = await this.signIn(attempt, signal);
      this.stepUpdate(attempt, step, StatusCodes.DONE);

      step = 'device-vpn';
      this.stepUpdate(attempt, step, StatusCodes.PENDING);
      const vpn = await cloud.connectDeviceVpn(
        credentials,
        companyId,
        agentId,
        settings.deviceConnectTimeoutMs,
        {
          signal,
        },
      );
      if (!vpn.connected) {
        throw new StepError(
          StatusCodes.DEVICE_VPN_FAILED,
          `the device reports its VPN as ${vpn.status || 'unknown'} (code ${vpn.statusCode || 'none'})`,
        );
      }
      this.stepUpdate(attempt, step, StatusCodes.DONE);

      step = 'session';
      this.stepUpdate(attempt, step, StatusCodes.PENDING);
      const body = await cloud.openSession(credentials, companyId, agentId, this.deps.publicKey, { signal });
      if (typeof body.id === 'string') attempt.sessionId = body.id;
      const session = parseSession(body);
      attempt.session = session;
      this.scheduleKeepalive(attempt);
      this.stepUpdate(attempt, step, StatusCodes.DONE);

      step = 'interface';
      this.stepUpdate(attempt, step, StatusCodes.PENDING);
      attempt.interfaceTouched = true;
      await tunnel.remove();
      signal.throwIfAborted();
      await tunnel.up(session);
      this.stepUpdate(attempt, step, StatusCodes.DONE);

      step = 'handshake';
      // Without keepalive nothing is sent before traffic flows, so there is no handshake to wait for.
      if (settings.handshakeTimeoutMs > 0 && session.keepalive > 0) {
        this.stepUpdate(attempt, step, StatusCodes.PENDING);
        await tunnel.awaitHandshake(session, settings.handshakeTimeoutMs, signal);
        this.stepUpdate(attempt, step, StatusCodes.DONE);
      } else {
        this.stepUpdate(attempt, step, StatusCodes.NOT_APPLICABLE);
      }

      step = 'device-ping';
      if (settings.pingTimeoutMs > 0) {
        this.stepUpdate(attempt, step, StatusCodes.PENDING);
        await this.pingDevice(session.deviceAddress, settings.pingTimeoutMs, signal);
        this.stepUpdate(attempt, step, StatusCodes.DONE);
      } else {
        this.stepUpdate(attempt, step, StatusCodes.NOT_APPLICABLE);
      }
      signal.throwIfAborted();

      attempt.connected = true;
      this.setState({
        ...this.state,
        status: 'connected',
        statusCode: StatusCodes.ACTIVE,
        steps: withStep(this.state.steps, { name: 'tunnel', code: StatusCodes.ACTIVE }),
        tunnelAddress: session.tunnelAddress,
        deviceAddress: session.deviceAddress,
      });
      if (session.dns.length > 0)
        logger.info({ dns: session.dns }, 'DNS servers are not applied by the client');
      logger.info(
        {
          agentId,
          tunnelAddress: session.tunnelAddress,
          deviceAddress: session.deviceAddress,
          endpoint: session.serverEndpoint,
        },
        'tunnel up',
      );
    } catch (err) {
      // Whoever aborted (disconnect, switch, session lost) tears down and sets the status.
      if (signal.aborted) return;
      const failure = classifyFailure(step, err);
      logger.warn({ step, code: failure.code, message: failure.message }, 'connect failed');
      const teardownFailure = await this.teardown(attempt);
      if (this.attempt !== attempt || signal.aborted) return;
      this.fail(failure, teardownFailure);
    }
  }

  private async signIn(attempt: Attempt, signal: AbortSignal): Promise<Credentials> {
    const { cloud } = this.deps;
    const { accessToken, sector } = attempt.request;
    let credentials: Credentials = { token: accessToken, sector };
    try {
      await cloud.authInfo(credentials, { signal });
      attempt.tokenExpiresAt = jwtExpiry(accessToken);
    } catch (err) {
      // A value that is not a JWT may be an API key: exchange it for an access token.
      if (!(err instanceof CloudError) || err.httpStatus !== 401 || looksLikeJwt(accessToken)) throw err;
      const token = await cloud.loginApiKey(accessToken, sector, { signal });
      credentials = { token: token.tokenId, sector };
      attempt.tokenExpiresAt =
        token.expiresOn !== undefined ? Date.parse(token.expiresOn) : jwtExpiry(token.tokenId);
      await cloud.authInfo(credentials, { signal });
    }
    attempt.credentials = credentials;
    return credentials;
  }

  private async pingDevice(address: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.deps.tunnel.ping(address)) return;
      signal.throwIfAborted();
      if (Date.now() >= deadline) {
        throw new StepError(
          StatusCodes.DEVICE_UNREACHABLE,
          `the device ${address} did not answer ping through the tunnel within ${timeoutMs} ms: check that it answers ICMP echo (or set pingTimeoutMs to 0)`,
        );
      }
      await sleep(DEVICE_PING_RETRY_MS, signal);
    }
  }

  /** Pings the session every pingInterval with its ping token, so it outlives the access token. */
  private scheduleKeepalive(attempt: Attempt): void {
    const session = attempt.session;
    if (session === undefined || attempt.abort.signal.aborted) return;
    attempt.keepalive = setTimeout(
      () => void this.keepalive(attempt, session),
      session.pingIntervalSec * 1000,
    );
    attempt.keepalive.unref();
  }

  private async keepalive(attempt: Attempt, session: VpnSession): Promise<void> {
    const { cloud, tunnel, logger } = this.deps;
    const { agentId, companyId } = attempt.request;
    if (attempt.abort.signal.aborted || this.attempt !== attempt) return;
    try {
      if (attempt.connected && !(await tunnel.exists())) {
        this.sessionLost(attempt, `the tunnel interface ${tunnel.interfaceName} disappeared`, false);
        return;
      }
      await cloud.pingSession(companyId, agentId, session.id, session.pingToken, {
        signal: attempt.abort.signal,
        timeoutMs: Math.min(10_000, session.pingIntervalSec * 1000),
      });
      logger.debug({ sessionId: session.id }, 'session kept alive');
    } catch (err) {
      if (attempt.abort.signal.aborted) return;
      if (err instanceof CloudError && (err.httpStatus === 404 || err.httpStatus === 410)) {
        this.sessionLost(attempt, `the cloud ended the VPN session (${err.message})`, true);
        return;
      }
      // The cloud may be briefly away; it expires the session only after several missed pings.
      logger.warn({ ...errorFields(err) }, 'session keepalive failed; retrying at the next interval');
    }
    this.scheduleKeepalive(attempt);
  }

  private sessionLost(attempt: Attempt, message: string, endedByCloud: boolean): void {
    if (this.attempt !== attempt || attempt.abort.signal.aborted) return;
    this.deps.logger.warn({ agentId: attempt.view.agentId, reason: message }, 'tunnel lost');
    if (endedByCloud) attempt.sessionId = undefined;
    attempt.abort.abort(new Error(message));
    void this.queue.run(async () => {
      const teardownFailure = await this.teardown(attempt);
      if (this.attempt !== attempt || attempt.ending !== undefined) return;
      this.fail({ step: 'tunnel', code: StatusCodes.TUNNEL_LOST, message }, teardownFailure);
    });
  }

  /** The error status; the request stays active (its holder may retry) until someone disconnects. */
  private fail(failure: StepFailure, teardownFailure: StepFailure | undefined): void {
    // The first failure is the one to act on; a failed cleanup after it is worth knowing too.
    const message =
      teardownFailure === undefined
        ? failure.message
        : `${failure.message}; then: ${teardownFailure.message}`;
    this.setState({
      status: 'error',
      activeRequest: this.state.activeRequest,
      statusCode: failure.code,
      steps: withStep(this.state.steps, { name: failure.step, code: failure.code, message }),
    });
  }

  /**
   * Removes what the attempt set up: the interface, then the session at the cloud (which removes
   * our peer from the gateway). Only a failed interface removal is a failure; a session that
   * cannot be deleted expires at the cloud once its pings stop.
   */
  private async teardown(attempt: Attempt): Promise<StepFailure | undefined> {
    const { cloud, tunnel, logger } = this.deps;
    clearTimeout(attempt.keepalive);
    attempt.connected = false;
    let failure: StepFailure | undefined;
    if (attempt.interfaceTouched) {
      try {
        await tunnel.remove();
        attempt.interfaceTouched = false;
      } catch (err) {
        failure = classifyFailure('tunnel', err);
        logger.error({ ...errorFields(err) }, 'tunnel interface could not be removed');
      }
    }
    const sessionId = attempt.sessionId;
    attempt.sessionId = undefined;
    if (sessionId !== undefined && attempt.credentials !== undefined) {
      const expiresAt = attempt.tokenExpiresAt;
      if (expiresAt !== undefined && expiresAt - TOKEN_EXPIRY_MARGIN_MS <= Date.now()) {
        logger.info({ sessionId }, 'access token expired: leaving the session to expire at the cloud');
      } else {
        const { agentId, companyId } = attempt.request;
        await cloud
          .closeSession(attempt.credentials, companyId, agentId, sessionId, {
            timeoutMs: CLOSE_SESSION_TIMEOUT_MS,
          })
          .then(
            () => logger.info({ sessionId }, 'VPN session closed'),
            (err: unknown) =>
              logger.warn(
                { sessionId, ...errorFields(err) },
                'VPN session could not be closed; the cloud will expire it',
              ),
          );
      }
    }
    return failure;
  }

  private stepUpdate(attempt: Attempt, name: StepName, code: string): void {
    if (this.attempt !== attempt || attempt.abort.signal.aborted) return;
    this.setState({ ...this.state, steps: withStep(this.state.steps, { name, code }) });
  }

  private setState(next: ClientStatus): void {
    this.state = next;
    this.emit('change', this.status());
  }
}

function withStep(steps: readonly Step[], update: Step): Step[] {
  const list = steps.length === 0 ? initialSteps() : steps;
  return list.map((s) => (s.name === update.name ? { ...update } : s));
}

const JWT_PATTERN = /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(value: string): boolean {
  return JWT_PATTERN.test(value);
}

/** The `exp` of a JWT in epoch ms, unverified (only used to skip a call that would fail). */
export function jwtExpiry(token: string): number | undefined {
  if (!looksLikeJwt(token)) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
