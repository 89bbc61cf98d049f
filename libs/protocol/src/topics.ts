// Every MQTT topic of the device protocol (docs/protocol.md): builders, the parser the cloud uses to route
// incoming messages, and the device ACL the broker enforces. Topics are compared level by level,
// never by string prefix, so account `acme` can never reach into account `acme-eu`.

export const VPN_APP_ID = 'VPNCLIENT-V2';
/** The Kura application of a VPN gateway (apps/vpn-gateway): peer syncs from the cloud, peer reports to it. */
export const GATEWAY_APP_ID = 'VPNGATEWAY-V1';
/** The applications that answer requests: a device's VPN client, a gateway. */
export type RequestAppId = typeof VPN_APP_ID | typeof GATEWAY_APP_ID;
const REQUEST_APPS: readonly string[] = [VPN_APP_ID, GATEWAY_APP_ID];

/** Kura's control-topic prefix: lifecycle, commands and replies live under it. */
const CONTROL_PREFIX = '$EDC';
const LIFECYCLE_APP = 'MQTT';

/** An account name as it appears in topics: 2-63 chars, lower-case letters, digits, dashes. */
export const ACCOUNT_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}$/;
/** A device (or cloud requester) MQTT client id. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Request ids are random UUIDs; any single topic-safe level is accepted from Kura gateways. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

// MQTT forbids U+0000 in topics; the other C0/C1 controls are legal but only ever an attack or a bug.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

export type VpnCommand = 'connect' | 'disconnect' | 'status';
export const VPN_COMMANDS: readonly VpnCommand[] = ['connect', 'disconnect', 'status'];

/** Kura's verb for each command: EXEC changes state, GET reads it. */
const COMMAND_VERB: Readonly<Record<VpnCommand, 'EXEC' | 'GET'>> = {
  connect: 'EXEC',
  disconnect: 'EXEC',
  status: 'GET',
};

export type GatewayCommand = 'sync' | 'apply';
export const GATEWAY_COMMANDS: readonly GatewayCommand[] = ['sync', 'apply'];

/** A topic level given to a builder that would change the topic's shape (a `/`, `+`, `#`, ...). */
export class TopicLevelError extends Error {
  constructor(what: string, value: string) {
    super(`invalid ${what} for a topic level: ${JSON.stringify(value)}`);
    this.name = 'TopicLevelError';
  }
}

function checkLevel(pattern: RegExp, what: string, value: string): string {
  // typeof first: RegExp.test(undefined) tests the string "undefined", which would pass.
  if (typeof value !== 'string' || !pattern.test(value)) throw new TopicLevelError(what, String(value));
  return value;
}

const account = (value: string): string => checkLevel(ACCOUNT_NAME_PATTERN, 'account name', value);
const client = (value: string): string => checkLevel(CLIENT_ID_PATTERN, 'client id', value);
const requestId = (value: string): string => checkLevel(REQUEST_ID_PATTERN, 'request id', value);

/** Topic builders. They throw TopicLevelError rather than build a topic from an unsafe level. */
export const Topics = {
  birth: (a: string, c: string): string =>
    `${CONTROL_PREFIX}/${account(a)}/${client(c)}/${LIFECYCLE_APP}/BIRTH`,
  disconnect: (a: string, c: string): string =>
    `${CONTROL_PREFIX}/${account(a)}/${client(c)}/${LIFECYCLE_APP}/DC`,
  lwt: (a: string, c: string): string => `${CONTROL_PREFIX}/${account(a)}/${client(c)}/${LIFECYCLE_APP}/LWT`,
  command: (a: string, c: string, cmd: VpnCommand): string => {
    if (!VPN_COMMANDS.includes(cmd)) throw new TopicLevelError('command', String(cmd));
    return `${CONTROL_PREFIX}/${account(a)}/${client(c)}/${VPN_APP_ID}/${COMMAND_VERB[cmd]}/${cmd}`;
  },
  reply: (a: string, requesterClientId: string, id: string, app: RequestAppId = VPN_APP_ID): string => {
    if (!REQUEST_APPS.includes(app)) throw new TopicLevelError('application id', String(app));
    return `${CONTROL_PREFIX}/${account(a)}/${client(requesterClientId)}/${app}/REPLY/${requestId(id)}`;
  },
  status: (a: string, c: string): string => `${account(a)}/${client(c)}/${VPN_APP_ID}/status`,
  /** cloud → gateway: a full peer sync (in chunks) or a change set (docs/protocol.md, gateways). */
  gatewayCommand: (a: string, gateway: string, cmd: GatewayCommand): string => {
    if (!GATEWAY_COMMANDS.includes(cmd)) throw new TopicLevelError('gateway command', String(cmd));
    return `${CONTROL_PREFIX}/${account(a)}/${client(gateway)}/${GATEWAY_APP_ID}/EXEC/${cmd}`;
  },
  /** gateway → cloud: per-peer handshake and traffic counters. */
  gatewayPeers: (a: string, gateway: string): string =>
    `${account(a)}/${client(gateway)}/${GATEWAY_APP_ID}/peers`,
};

/** What the cloud subscribes to. */
export const CloudSubscriptions = {
  lifecycle: `${CONTROL_PREFIX}/+/+/${LIFECYCLE_APP}/+`,
  status: `+/+/${VPN_APP_ID}/status`,
  replies: (requesterClientId: string, app: RequestAppId = VPN_APP_ID): string => {
    if (!REQUEST_APPS.includes(app)) throw new TopicLevelError('application id', String(app));
    return `${CONTROL_PREFIX}/+/${client(requesterClientId)}/${app}/REPLY/+`;
  },
  gatewayPeers: `+/+/${GATEWAY_APP_ID}/peers`,
  /** MQTT 5 / 3.1.1-extension shared subscription: each message goes to one member of `group`. */
  shared: (group: string, filter: string): string => {
    if (group === '' || /[/+#]/.test(group) || CONTROL_CHARS.test(group)) {
      throw new TopicLevelError('share group', group);
    }
    return `$share/${group}/${filter}`;
  },
};

/** The one filter a device (agent) subscribes to: every command addressed to it. */
export function deviceCommandSubscription(a: string, c: string): string {
  return `${CONTROL_PREFIX}/${account(a)}/${client(c)}/${VPN_APP_ID}/#`;
}

/** The one filter a gateway subscribes to: every request addressed to it. */
export function gatewayCommandSubscription(a: string, gateway: string): string {
  return `${CONTROL_PREFIX}/${account(a)}/${client(gateway)}/${GATEWAY_APP_ID}/#`;
}

export type ParsedTopic =
  | { kind: 'birth' | 'dc' | 'lwt'; account: string; clientId: string }
  | { kind: 'command'; account: string; clientId: string; command: VpnCommand }
  | { kind: 'reply'; app: RequestAppId; account: string; requesterClientId: string; requestId: string }
  | { kind: 'status'; account: string; clientId: string }
  | { kind: 'gateway-command'; account: string; clientId: string; command: GatewayCommand }
  | { kind: 'gateway-peers'; account: string; clientId: string };

const LIFECYCLE_KINDS: Readonly<Record<string, 'birth' | 'dc' | 'lwt'>> = {
  BIRTH: 'birth',
  DC: 'dc',
  LWT: 'lwt',
};

/**
 * Recognises exactly the topics of the protocol, with valid account and client ids; anything
 * else (other apps, extra levels, wrong case, EXEC/status, ...) is null.
 */
export function parseTopic(topic: string): ParsedTopic | null {
  const levels = topic.split('/');
  if (levels[0] !== CONTROL_PREFIX) {
    if (levels.length !== 4 || !validIds(levels[0], levels[1])) return null;
    if (levels[2] === VPN_APP_ID && levels[3] === 'status') {
      return { kind: 'status', account: levels[0], clientId: levels[1] };
    }
    if (levels[2] === GATEWAY_APP_ID && levels[3] === 'peers') {
      return { kind: 'gateway-peers', account: levels[0], clientId: levels[1] };
    }
    return null;
  }
  if (levels.length !== 5 && levels.length !== 6) return null;
  const [, acc, clientId, app, verb, last] = levels;
  if (!validIds(acc, clientId)) return null;
  if (levels.length === 5 && app === LIFECYCLE_APP && Object.hasOwn(LIFECYCLE_KINDS, verb)) {
    return { kind: LIFECYCLE_KINDS[verb], account: acc, clientId };
  }
  if (levels.length !== 6 || !REQUEST_APPS.includes(app)) return null;
  if (verb === 'REPLY') {
    return REQUEST_ID_PATTERN.test(last)
      ? {
          kind: 'reply',
          app: app as RequestAppId,
          account: acc,
          requesterClientId: clientId,
          requestId: last,
        }
      : null;
  }
  if (app === GATEWAY_APP_ID) {
    const command = last as GatewayCommand;
    return verb === 'EXEC' && GATEWAY_COMMANDS.includes(command)
      ? { kind: 'gateway-command', account: acc, clientId, command }
      : null;
  }
  const command = last as VpnCommand;
  if (!VPN_COMMANDS.includes(command) || COMMAND_VERB[command] !== verb) return null;
  return { kind: 'command', account: acc, clientId, command };
}

function validIds(acc: string | undefined, clientId: string | undefined): boolean {
  return (
    typeof acc === 'string' &&
    typeof clientId === 'string' &&
    ACCOUNT_NAME_PATTERN.test(acc) &&
    CLIENT_ID_PATTERN.test(clientId)
  );
}

// ---------------------------------------------------------------------------------------------
// Device ACL (docs/protocol.md). Deny by default; every rule needs at least one level below the granted
// namespace, and no topic or filter may contain empty levels, NUL or other control characters.

/**
 * A device may publish under `$EDC/{a}/{c}/...`, `{a}/{c}/...` and replies
 * `$EDC/{a}/{anyRequester}/{app}/REPLY/...` of its own application (`VPNCLIENT-V2` for a device,
 * `VPNGATEWAY-V1` for a gateway). Topic names never carry wildcards.
 */
export function deviceMayPublish(
  acc: string,
  clientId: string,
  topic: string,
  app: RequestAppId = VPN_APP_ID,
): boolean {
  if (!validIds(acc, clientId) || typeof topic !== 'string') return false;
  if (topic.includes('+') || topic.includes('#') || CONTROL_CHARS.test(topic)) return false;
  const levels = topic.split('/');
  if (levels.includes('')) return false;
  if (levels[0] === CONTROL_PREFIX) {
    if (levels[1] !== acc) return false;
    if (levels[2] === clientId) return levels.length >= 4;
    // A reply to any requester of its own account (the cloud's client id is not the device's).
    return levels.length >= 6 && levels[3] === app && levels[4] === 'REPLY';
  }
  return levels[0] === acc && levels[1] === clientId && levels.length >= 3;
}

/**
 * A device may subscribe only inside `$EDC/{a}/{c}/#`: the first three levels literal and its
 * own, wildcards only below them (`+` as a whole level, `#` as the whole last level).
 */
export function deviceMaySubscribe(acc: string, clientId: string, filter: string): boolean {
  if (!validIds(acc, clientId) || typeof filter !== 'string' || CONTROL_CHARS.test(filter)) return false;
  const levels = filter.split('/');
  if (levels.length < 4 || levels[0] !== CONTROL_PREFIX || levels[1] !== acc || levels[2] !== clientId) {
    return false;
  }
  const last = levels.length - 1;
  for (let i = 3; i <= last; i++) {
    const level = levels[i];
    if (level === '' || (level === '#' && i !== last)) return false;
    if (level.length > 1 && (level.includes('+') || level.includes('#'))) return false;
  }
  return true;
}

/** The topic filters an edge client may use, for brokers that take an ACL as a list of filters. */
export interface EdgeAclFilters {
  publish: string[];
  subscribe: string[];
}

/**
 * The ACL of `deviceMayPublish` / `deviceMaySubscribe` as MQTT topic filters, for external brokers
 * (Mosquitto's dynamic security roles, EMQX's per-client ACL): publish under `$EDC/{a}/{c}/#` and
 * `{a}/{c}/#`, replies `$EDC/{a}/+/{app}/REPLY/#`; subscribe to `$EDC/{a}/{c}/#`. One difference:
 * a broker's `#` also matches the parent level (`{a}/{c}`), which the in-process check refuses;
 * the cloud handles no topic of that shape, so a message there reaches nobody.
 */
export function edgeAclFilters(a: string, c: string, app: RequestAppId = VPN_APP_ID): EdgeAclFilters {
  if (!REQUEST_APPS.includes(app)) throw new TopicLevelError('application id', String(app));
  const own = `${CONTROL_PREFIX}/${account(a)}/${client(c)}/#`;
  return {
    publish: [own, `${a}/${c}/#`, `${CONTROL_PREFIX}/${a}/+/${app}/REPLY/#`],
    subscribe: [own],
  };
}
