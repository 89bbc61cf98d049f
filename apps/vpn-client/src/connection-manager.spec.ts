// The request/controller state machine and the connect flow against a fake cloud and tunnel:
// who may connect, idempotency, disconnect by anyone, step codes, cleanup after failures.
import { Writable } from 'node:stream';

import pino from 'pino';

import type { TunnelPort } from './client-tunnel';
import { CloudError, Credentials, DeviceVpnStatus, SessionBody } from './cloud-client';
import { CloudPort, ConnectRequest, ConnectionManager, jwtExpiry, looksLikeJwt } from './connection-manager';
import { DEFAULT_SETTINGS, ClientSettings } from './settings';
import type { ClientStatus } from './status';
import { WireguardTunnelError } from '@app/edge';

const SERVER_KEY = Buffer.alloc(32, 7).toString('base64');
const AGENT = '5f0c7f0e-5b7b-4f43-9a53-1d8f4b0b7a12';
const OTHER_AGENT = '5f0c7f0e-5b7b-4f43-9a53-1d8f4b0b7a99';
const COMPANY = '5f0c7f0e-5b7b-4f43-9a53-1d8f4b0b7a13';
const CONTROLLER_A = '11111111-1111-4111-8111-111111111111';
const CONTROLLER_B = '22222222-2222-4222-8222-222222222222';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjQxMDI0NDQ4MDB9.c2lnbmF0dXJl';

function sessionBody(overrides: Partial<SessionBody> = {}): SessionBody {
  return {
    id: 'session-1',
    pingToken: 'ping-secret',
    deviceId: AGENT,
    gatewayId: 'gw-1',
    tunnelAddress: '10.208.0.5',
    serverEndpoint: '198.18.0.1:51820',
    serverPublicKey: SERVER_KEY,
    allowedIps: ['10.200.0.2/32'],
    dns: [],
    keepalive: 25,
    pingInterval: 30,
    expiresOn: new Date(Date.now() + 60_000).toISOString(),
    ...overrides,
  };
}

/** Each step answers what the test says; calls are recorded (credentials included, to check them). */
class FakeCloud implements CloudPort {
  calls: string[] = [];
  tokens: string[] = [];
  authInfoResult: () => Promise<void> = async () => undefined;
  apiKeyResult: () => Promise<{ tokenId: string; expiresOn: string | undefined }> = async () => ({
    tokenId: TOKEN,
    expiresOn: undefined,
  });
  connectResult: (signal?: AbortSignal) => Promise<DeviceVpnStatus> = async () => ({
    connected: true,
    ipAddress: '10.200.0.2',
    status: 'connected',
    statusCode: '004',
  });
  sessionResult: () => Promise<SessionBody> = async () => sessionBody();
  pingResult: () => Promise<void> = async () => undefined;
  closed: string[] = [];

  authInfo = async (c: Credentials) => {
    this.calls.push('authInfo');
    this.tokens.push(c.token);
    await this.authInfoResult();
    return { scopeId: COMPANY, role: 'operator', permissions: ['vpn:connect'] };
  };
  loginApiKey = async () => {
    this.calls.push('loginApiKey');
    return this.apiKeyResult();
  };
  connectDeviceVpn = async (
    _c: Credentials,
    _co: string,
    _a: string,
    _t: number,
    o?: { signal?: AbortSignal },
  ) => {
    this.calls.push('connectDeviceVpn');
    return this.connectResult(o?.signal);
  };
  openSession = async () => {
    this.calls.push('openSession');
    return this.sessionResult();
  };
  pingSession = async (_co: string, _a: string, id: string, pingToken: string) => {
    this.calls.push(`ping ${id} ${pingToken}`);
    return this.pingResult();
  };
  closeSession = async (c: Credentials, _co: string, _a: string, id: string) => {
    this.calls.push('closeSession');
    this.tokens.push(c.token);
    this.closed.push(id);
  };
}

class FakeTunnel implements TunnelPort {
  readonly interfaceName = 'vpncl-test';
  present = false;
  upFailure: Error | undefined;
  handshakeFailure: Error | undefined;
  pingAnswers = true;
  ups = 0;

  async up(): Promise<void> {
    this.present = true;
    this.ups++;
    if (this.upFailure) throw this.upFailure;
  }
  async awaitHandshake(): Promise<void> {
    if (this.handshakeFailure) throw this.handshakeFailure;
  }
  async ping(): Promise<boolean> {
    return this.pingAnswers;
  }
  async exists(): Promise<boolean> {
    return this.present;
  }
  async remove(): Promise<void> {
    this.present = false;
  }
}

function setup(settings: Partial<ClientSettings> = {}) {
  const cloud = new FakeCloud();
  const tunnel = new FakeTunnel();
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const manager = new ConnectionManager({
    cloud,
    tunnel,
    publicKey: Buffer.alloc(32, 9).toString('base64'),
    settings: () => ({ ...DEFAULT_SETTINGS, pingTimeoutMs: 500, handshakeTimeoutMs: 500, ...settings }),
    logger: pino({ level: 'debug' }, sink),
  });
  const pushes: ClientStatus[] = [];
  manager.on('change', (s) => pushes.push(s));
  return { cloud, tunnel, manager, pushes, logLines };
}

function request(overrides: Partial<ConnectRequest> = {}): ConnectRequest {
  return {
    agentId: AGENT,
    companyId: COMPANY,
    controllerIdentifier: CONTROLLER_A,
    accessToken: TOKEN,
    sector: undefined,
    ...overrides,
  };
}

async function until(manager: ConnectionManager, status: ClientStatus['status'], timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (manager.status().status !== status) {
    if (Date.now() > deadline) throw new Error(`status stayed ${JSON.stringify(manager.status())}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return manager.status();
}

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('ConnectionManager', () => {
  it('should walk every step and end connected with the addresses', async () => {
    const { manager, cloud, tunnel, pushes } = setup();
    const outcome = manager.connect(request());
    expect(outcome.kind).toBe('started');
    const status = await until(manager, 'connected');
    expect(status).toMatchObject({
      status: 'connected',
      statusCode: '004',
      tunnelAddress: '10.208.0.5',
      deviceAddress: '10.200.0.2',
      activeRequest: { agentId: AGENT, companyId: COMPANY, controllerIdentifier: CONTROLLER_A },
    });
    expect(status.steps.map((s) => `${s.name}:${s.code}`)).toEqual([
      'sign-in:003',
      'device-vpn:003',
      'session:003',
      'interface:003',
      'handshake:003',
      'device-ping:003',
      'tunnel:004',
    ]);
    expect(cloud.calls).toEqual(['authInfo', 'connectDeviceVpn', 'openSession']);
    expect(tunnel.present).toBe(true);
    // Every change was pushed, the first being "connecting" with all steps pending.
    expect(pushes[0]).toMatchObject({ status: 'connecting', statusCode: '002' });
    expect(pushes.some((p) => p.steps.find((s) => s.name === 'session')?.code === '002')).toBe(true);
  });

  it('should refuse another controller while a request is active, connected included', async () => {
    const { manager } = setup();
    manager.connect(request());
    const conflict = manager.connect(request({ controllerIdentifier: CONTROLLER_B }));
    expect(conflict).toMatchObject({
      kind: 'conflict',
      activeRequest: { controllerIdentifier: CONTROLLER_A },
    });
    await until(manager, 'connected');
    expect(manager.connect(request({ controllerIdentifier: CONTROLLER_B })).kind).toBe('conflict');
    expect(manager.connect(request({ controllerIdentifier: CONTROLLER_B, agentId: OTHER_AGENT })).kind).toBe(
      'conflict',
    );
  });

  it('should answer the same controller and device with the current status (idempotent)', async () => {
    const { manager, cloud } = setup();
    manager.connect(request());
    expect(manager.connect(request()).kind).toBe('unchanged');
    await until(manager, 'connected');
    const again = manager.connect(request());
    expect(again).toMatchObject({ kind: 'unchanged', status: { status: 'connected' } });
    expect(cloud.calls.filter((c) => c === 'openSession')).toHaveLength(1);
  });

  it('should let anyone disconnect: the tunnel and the session go, status idle 000', async () => {
    const { manager, cloud, tunnel } = setup();
    manager.connect(request());
    await until(manager, 'connected');
    const status = await manager.disconnect();
    expect(status).toEqual({ status: 'idle', activeRequest: '', statusCode: '000', steps: [] });
    expect(tunnel.present).toBe(false);
    expect(cloud.closed).toEqual(['session-1']);
    // Now another controller may connect.
    expect(manager.connect(request({ controllerIdentifier: CONTROLLER_B })).kind).toBe('started');
    await until(manager, 'connected');
  });

  it('should abort a connect in progress on disconnect and leave nothing behind', async () => {
    const { manager, cloud, tunnel } = setup();
    const gate = deferred<DeviceVpnStatus>();
    cloud.connectResult = (signal) => {
      signal?.addEventListener('abort', () => gate.reject(new Error('aborted')));
      return gate.promise;
    };
    manager.connect(request());
    await new Promise((r) => setImmediate(r));
    const status = await manager.disconnect();
    expect(status.status).toBe('idle');
    expect(cloud.calls).not.toContain('openSession');
    expect(tunnel.ups).toBe(0);
  });

  it('should mark the failing step with its code, remove what it set up and keep the request until disconnect', async () => {
    const { manager, cloud, tunnel } = setup();
    tunnel.handshakeFailure = new WireguardTunnelError(
      'handshake',
      'no handshake with 198.18.0.1:51820 within 500 ms',
    );
    manager.connect(request());
    const status = await until(manager, 'error');
    expect(status.statusCode).toBe('720');
    expect(status.steps.find((s) => s.name === 'handshake')).toMatchObject({ code: '720' });
    expect(status.steps.find((s) => s.name === 'handshake')?.message).toMatch(/UDP/);
    expect(status.tunnelAddress).toBeUndefined();
    expect(tunnel.present).toBe(false);
    expect(cloud.closed).toEqual(['session-1']);
    // The request stays with its controller: others must disconnect first, the holder may retry.
    expect(manager.connect(request({ controllerIdentifier: CONTROLLER_B })).kind).toBe('conflict');
    tunnel.handshakeFailure = undefined;
    expect(manager.connect(request()).kind).toBe('started');
    await until(manager, 'connected');
  });

  it.each([
    ['sign-in', 'unreachable', '110', new CloudError('x', undefined, undefined, undefined)],
    ['sign-in', '401', '120', new CloudError('x', 401, 'UNAUTHORIZED', 'bad token')],
    ['sign-in', '403', '130', new CloudError('x', 403, 'FORBIDDEN', 'no')],
    ['device-vpn', '404', '210', new CloudError('x', 404, 'NOT_FOUND', 'device')],
    ['device-vpn', '409 offline', '220', new CloudError('x', 409, 'DEVICE_NOT_CONNECTED', '')],
    ['device-vpn', '409 no gateway', '330', new CloudError('x', 409, 'NO_GATEWAY', '')],
    ['device-vpn', '503 gateway', '340', new CloudError('x', 503, 'GATEWAY_UNAVAILABLE', '')],
    ['device-vpn', '504', '250', new CloudError('x', 504, 'DEVICE_TIMEOUT', '')],
    ['device-vpn', '502', '250', new CloudError('x', 502, 'DEVICE_ERROR', '')],
    ['session', '409 vpn down', '250', new CloudError('x', 409, 'VPN_NOT_CONNECTED', '')],
    ['session', '409 exists', '350', new CloudError('x', 409, 'ENTRY_EXISTS', '')],
    ['session', '507', '350', new CloudError('x', 507, 'INSUFFICIENT_STORAGE', '')],
    ['session', '503', '340', new CloudError('x', 503, 'GATEWAY_UNAVAILABLE', '')],
  ])('should report %s failing with %s as %s', async (step, _what, code, error) => {
    const { manager, cloud, tunnel } = setup();
    const fail = async (): Promise<never> => {
      throw error;
    };
    if (step === 'sign-in') cloud.authInfoResult = fail;
    if (step === 'device-vpn') cloud.connectResult = fail;
    if (step === 'session') cloud.sessionResult = fail;
    manager.connect(request());
    const status = await until(manager, 'error');
    expect(status.statusCode).toBe(code);
    expect(status.steps.find((s) => s.name === step)).toMatchObject({ code });
    expect(tunnel.ups).toBe(0);
  });

  it('should refuse an invalid session with 310 and still delete it at the cloud', async () => {
    const { manager, cloud } = setup();
    cloud.sessionResult = async () => sessionBody({ serverPublicKey: 'not-a-key' });
    manager.connect(request());
    const status = await until(manager, 'error');
    expect(status.statusCode).toBe('310');
    expect(cloud.closed).toEqual(['session-1']);
  });

  it('should report an interface that cannot be set up as 710 and the device not answering as 820', async () => {
    const first = setup();
    first.tunnel.upFailure = new WireguardTunnelError('setup', 'ip link: Operation not permitted');
    first.manager.connect(request());
    const failed = await until(first.manager, 'error');
    expect(failed.statusCode).toBe('710');
    expect(failed.steps.find((s) => s.name === 'interface')?.message).toMatch(/root/);
    expect(first.tunnel.present).toBe(false);

    const second = setup({ pingTimeoutMs: 300 });
    second.tunnel.pingAnswers = false;
    second.manager.connect(request());
    const unreachable = await until(second.manager, 'error');
    expect(unreachable.statusCode).toBe('820');
    expect(unreachable.steps.find((s) => s.name === 'device-ping')?.message).toMatch(/10\.200\.0\.2/);
    expect(second.tunnel.present).toBe(false);
  });

  it('should skip the handshake and ping steps (001) when their timeouts are 0', async () => {
    const { manager } = setup({ handshakeTimeoutMs: 0, pingTimeoutMs: 0 });
    manager.connect(request());
    const status = await until(manager, 'connected');
    expect(status.steps.find((s) => s.name === 'handshake')?.code).toBe('001');
    expect(status.steps.find((s) => s.name === 'device-ping')?.code).toBe('001');
  });

  it('should exchange a value that is not a JWT as an API key and use the token it gets', async () => {
    const { manager, cloud } = setup();
    let first = true;
    cloud.authInfoResult = async () => {
      if (first) {
        first = false;
        throw new CloudError('x', 401, 'UNAUTHORIZED', '');
      }
    };
    manager.connect(request({ accessToken: 'ak_1234567890abcdef' }));
    await until(manager, 'connected');
    expect(cloud.calls.slice(0, 3)).toEqual(['authInfo', 'loginApiKey', 'authInfo']);
    expect(cloud.tokens).toEqual(['ak_1234567890abcdef', TOKEN]);
    await manager.disconnect();
    expect(cloud.tokens[cloud.tokens.length - 1]).toBe(TOKEN);
  });

  it('should not try a JWT that the cloud refused as an API key', async () => {
    const { manager, cloud } = setup();
    cloud.authInfoResult = async () => {
      throw new CloudError('x', 401, 'UNAUTHORIZED', 'expired');
    };
    manager.connect(request());
    expect((await until(manager, 'error')).statusCode).toBe('120');
    expect(cloud.calls).toEqual(['authInfo']);
  });

  it('should keep the session alive with its ping token and end with 750 when the cloud answers 404', async () => {
    const { manager, cloud, tunnel } = setup();
    cloud.sessionResult = async () => sessionBody({ pingInterval: 1 });
    manager.connect(request());
    await until(manager, 'connected');
    cloud.pingResult = async () => {
      throw new CloudError('x', 404, 'NOT_FOUND', 'session');
    };
    const status = await until(manager, 'error', 5000);
    expect(cloud.calls).toContain('ping session-1 ping-secret');
    expect(status.statusCode).toBe('750');
    expect(status.steps.find((s) => s.name === 'tunnel')).toMatchObject({ code: '750' });
    expect(tunnel.present).toBe(false);
    // The cloud ended it: nothing to delete.
    expect(cloud.closed).toEqual([]);
  });

  it('should end with 750 when the interface disappears under it', async () => {
    const { manager, cloud, tunnel } = setup();
    cloud.sessionResult = async () => sessionBody({ pingInterval: 1 });
    manager.connect(request());
    await until(manager, 'connected');
    tunnel.present = false;
    const status = await until(manager, 'error', 5000);
    expect(status.statusCode).toBe('750');
    expect(status.steps.find((s) => s.name === 'tunnel')?.message).toMatch(/disappeared/);
    expect(cloud.closed).toEqual(['session-1']);
  });

  it('should switch devices for the same controller, tearing the first tunnel down first', async () => {
    const { manager, cloud } = setup();
    manager.connect(request());
    await until(manager, 'connected');
    expect(manager.connect(request({ agentId: OTHER_AGENT })).kind).toBe('started');
    const status = await until(manager, 'connected');
    expect(status.activeRequest).toMatchObject({ agentId: OTHER_AGENT });
    expect(cloud.closed).toEqual(['session-1']);
  });

  it('should not start anything after close()', async () => {
    const { manager, tunnel } = setup();
    manager.connect(request());
    await until(manager, 'connected');
    await manager.close();
    expect(tunnel.present).toBe(false);
    expect(manager.connect(request()).kind).toBe('closed');
  });

  it('should never log the access token or the ping token', async () => {
    const { manager, cloud, logLines } = setup();
    cloud.sessionResult = async () => sessionBody({ pingInterval: 1 });
    manager.connect(request({ accessToken: `${TOKEN}` }));
    await until(manager, 'connected');
    await manager.disconnect();
    const all = logLines.join('\n');
    expect(all).toContain('connect requested');
    expect(all).not.toContain(TOKEN);
    expect(all).not.toContain('ping-secret');
  });
});

describe('JWT helpers', () => {
  it('should tell JWTs from API keys and read exp without verifying', () => {
    expect(looksLikeJwt(TOKEN)).toBe(true);
    expect(looksLikeJwt('ak_1234567890abcdef')).toBe(false);
    expect(jwtExpiry(TOKEN)).toBe(4102444800 * 1000);
    expect(jwtExpiry('ak_x')).toBeUndefined();
  });
});
