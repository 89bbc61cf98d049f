import {
  buildGatewayReply,
  encodeGatewayApply,
  encodeGatewayPeerReport,
  encodeGatewaySync,
  firstHostAddress,
  GatewayMessageError,
  GatewayPeer,
  MAX_PEERS_PER_MESSAGE,
  parseGatewayApply,
  parseGatewayPeerReport,
  parseGatewaySync,
  readGatewayReply,
} from './gateway';
import { metric } from './kura-payload';

const key = (n: number): string => Buffer.alloc(32, n).toString('base64');
const ACCOUNT = '0b9b6f8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b';

function peer(n: number, overrides: Partial<GatewayPeer> = {}): GatewayPeer {
  return {
    publicKey: key(n),
    allowedIps: [`100.64.0.${n}/32`],
    kind: 'device',
    accountId: ACCOUNT,
    allow: [],
    ...overrides,
  };
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

describe('gateway protocol', () => {
  it('should round-trip a sync chunk, a change set and a peer report', () => {
    const sync = { serial: 7, chunk: 0, last: true, addresses: ['100.64.0.1/24'], peers: [peer(2), peer(3)] };
    expect(parseGatewaySync(encodeGatewaySync(sync))).toEqual(sync);
    const apply = {
      serial: 9,
      previous: 7,
      addresses: ['100.64.0.1/24'],
      upsert: [peer(4, { kind: 'client', allow: [key(2)] })],
      remove: [key(3)],
    };
    expect(parseGatewayApply(encodeGatewayApply(apply))).toEqual(apply);
    const report = {
      peers: [{ publicKey: key(2), lastHandshakeOn: 1_700_000_000_000, rxBytes: 10, txBytes: 20 }],
    };
    expect(parseGatewayPeerReport(encodeGatewayPeerReport(report))).toEqual(report);
  });

  it.each<[string, unknown]>([
    ['not JSON', 'nope'],
    ['an array', []],
    ['a negative serial', { serial: -1, chunk: 0, last: true, addresses: [], peers: [] }],
    ['a fractional serial', { serial: 1.5, chunk: 0, last: true, addresses: [], peers: [] }],
    ['a missing last', { serial: 1, chunk: 0, addresses: [], peers: [] }],
    [
      'a malformed key',
      { serial: 1, chunk: 0, last: true, addresses: [], peers: [peer(2, { publicKey: 'x' })] },
    ],
    [
      'a non-canonical key',
      {
        serial: 1,
        chunk: 0,
        last: true,
        addresses: [],
        peers: [peer(2, { publicKey: `${key(2).slice(0, 42)}B=` })],
      },
    ],
    [
      'a range as allowed IP',
      { serial: 1, chunk: 0, last: true, addresses: [], peers: [peer(2, { allowedIps: ['100.64.0.0/24'] })] },
    ],
    [
      'no allowed IP',
      { serial: 1, chunk: 0, last: true, addresses: [], peers: [peer(2, { allowedIps: [] })] },
    ],
    [
      'an unknown kind',
      { serial: 1, chunk: 0, last: true, addresses: [], peers: [{ ...peer(2), kind: 'server' }] },
    ],
    [
      'an account that is not a UUID',
      { serial: 1, chunk: 0, last: true, addresses: [], peers: [peer(2, { accountId: 'acme' })] },
    ],
    ['an address without prefix', { serial: 1, chunk: 0, last: true, addresses: ['100.64.0.1'], peers: [] }],
    [
      'too many peers',
      {
        serial: 1,
        chunk: 0,
        last: true,
        addresses: [],
        peers: Array.from({ length: MAX_PEERS_PER_MESSAGE + 1 }, (_, i) => peer(i % 250)),
      },
    ],
  ])('should refuse a sync with %s', (_what, body) => {
    expect(() => parseGatewaySync(typeof body === 'string' ? Buffer.from(body) : json(body))).toThrow(
      GatewayMessageError,
    );
  });

  it('should refuse a change set that does not move the serial forward', () => {
    expect(() =>
      parseGatewayApply(json({ serial: 5, previous: 5, addresses: [], upsert: [], remove: [] })),
    ).toThrow('previous must be lower than serial');
  });

  it('should refuse an empty body and keep unknown keys out of the result', () => {
    expect(() => parseGatewaySync(Buffer.alloc(0))).toThrow('missing body');
    const parsed = parseGatewaySync(
      json({ serial: 1, chunk: 0, last: true, addresses: [], peers: [], extra: 1 }),
    );
    expect(parsed).toEqual({ serial: 1, chunk: 0, last: true, addresses: [], peers: [] });
  });

  it('should read a reply with its serial and refuse one without', () => {
    const reply = buildGatewayReply({ code: 409, serial: 12, exceptionMessage: 'gap' });
    expect(readGatewayReply(reply)).toEqual({ code: 409, serial: 12, exceptionMessage: 'gap' });
    expect(readGatewayReply({ metrics: [metric.int32('response.code', 200)] })).toBeNull();
    expect(
      readGatewayReply({
        metrics: [metric.int32('response.code', 200), metric.string('gateway.serial', '1')],
      }),
    ).toBeNull();
  });

  it.each([
    ['10.200.0.0/20', '10.200.0.1/20'],
    ['10.200.16.0/20', '10.200.16.1/20'],
    ['100.65.0.0/16', '100.65.0.1/16'],
    ['10.200.16.9/20', '10.200.16.1/20'],
  ])('should give %s the first host address %s', (subnet, first) => {
    expect(firstHostAddress(subnet)).toBe(first);
  });
});
