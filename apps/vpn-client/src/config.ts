// Options of the engineer's VPN client: argv, then VPN_CLIENT_* environment variables, then a JSON
// config file; checked here so that a bad value stops the process with a message naming it.
import { isIP } from 'node:net';

import {
  ConfigError,
  INTERFACE_NAME_PATTERN,
  LOG_LEVELS,
  LogLevel,
  OptionDef,
  OptionSources,
  usage,
} from '@app/edge';

export { ConfigError } from '@app/edge';

export const ENV_PREFIX = 'VPN_CLIENT_';
export const DEFAULT_LISTEN = '127.0.0.1:9250';
export const DEFAULT_STATE_DIR = '.vpn-client';
export const DEFAULT_INTERFACE = 'vpncl0';

export interface ListenAddress {
  host: string;
  /** 0 = any free port; the bound one is logged. */
  port: number;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

export interface ClientConfig {
  /** The cloud's base URL without a trailing slash, e.g. `https://cloud.example.com`. */
  apiUrl: string;
  listen: ListenAddress;
  stateDir: string;
  interfaceName: string;
  netns: string | undefined;
  /** Undefined: a self-signed certificate kept in the state dir. */
  tls: TlsFiles | undefined;
  /** Web origins (`scheme://host[:port]`) whose pages may call the API from a browser. */
  allowedOrigins: string[];
  logLevel: LogLevel;
}

const OPTIONS: Readonly<Record<string, OptionDef>> = {
  api: { type: 'string', help: 'the cloud API base URL, e.g. https://cloud.example.com (required)' },
  listen: {
    type: 'string',
    help: `loopback host:port to serve the local API on (default ${DEFAULT_LISTEN}; port 0 = any)`,
  },
  'state-dir': {
    type: 'string',
    help: `where keys, certificate and configuration live (default ./${DEFAULT_STATE_DIR})`,
  },
  interface: { type: 'string', help: `tunnel interface name, max 15 chars (default ${DEFAULT_INTERFACE})` },
  netns: { type: 'string', help: 'bring the tunnel up inside this network namespace' },
  'tls-cert': { type: 'string', help: 'PEM certificate to serve instead of the generated one' },
  'tls-key': { type: 'string', help: 'PEM private key of --tls-cert' },
  'allow-origin': {
    type: 'string',
    help: 'web origin allowed to call the API from a browser; repeat it (env/file: comma-separated)',
  },
  'log-level': { type: 'string', help: `${LOG_LEVELS.join('|')} (default info)` },
};

const NETNS_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export function clientUsage(): string {
  return [
    'usage: vpn-client --api URL [--listen 127.0.0.1:9250] [--state-dir DIR] [--interface NAME] [--netns NAME]',
    '                  [--tls-cert FILE --tls-key FILE] [--allow-origin URL ...] [--log-level info]',
    '',
    "Serves the VPN Client API (HTTPS, loopback only) for a web portal in the engineer's browser.",
    '',
    'Options (argv > environment > config file):',
    usage(OPTIONS, ENV_PREFIX),
  ].join('\n');
}

export function parseClientConfig(args: readonly string[], env: NodeJS.ProcessEnv): ClientConfig {
  // OptionSources keeps only the last value of a repeated flag, so --allow-origin is collected first.
  const { origins: argvOrigins, rest } = extractRepeated(args, 'allow-origin');
  const src = new OptionSources(OPTIONS, rest, env, ENV_PREFIX);
  const certFile = src.string('tls-cert');
  const keyFile = src.string('tls-key');
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError('--tls-cert and --tls-key go together: give both or neither');
  }
  const fromSources = src.string('allow-origin');
  const origins =
    argvOrigins.length > 0 ? argvOrigins : (fromSources?.split(/[\s,]+/).filter((o) => o !== '') ?? []);
  const netns = src.matching('netns', NETNS_PATTERN, 'a network namespace name of [A-Za-z0-9_.-]');
  return {
    apiUrl: parseApiUrl(src.required('api')),
    listen: parseListen(src.string('listen', DEFAULT_LISTEN)),
    stateDir: src.string('state-dir', DEFAULT_STATE_DIR),
    interfaceName:
      src.matching('interface', INTERFACE_NAME_PATTERN, 'a Linux interface name of at most 15 chars') ??
      DEFAULT_INTERFACE,
    netns,
    tls: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined,
    allowedOrigins: [...new Set(origins.map(parseOrigin))],
    logLevel: src.oneOf('log-level', LOG_LEVELS, 'info'),
  };
}

function extractRepeated(args: readonly string[], flag: string): { origins: string[]; rest: string[] } {
  const origins: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === `--${flag}`) {
      const value = args[i + 1];
      if (value === undefined || value.startsWith('--')) throw new ConfigError(`--${flag} needs a value`);
      origins.push(value);
      i++;
    } else if (arg.startsWith(`--${flag}=`)) {
      origins.push(arg.slice(flag.length + 3));
    } else {
      rest.push(arg);
    }
  }
  return { origins, rest };
}

export function parseApiUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`--api must be an http:// or https:// URL, got "${value}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError(`--api must be an http:// or https:// URL, got "${value}"`);
  }
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
    throw new ConfigError('--api must not carry credentials, a query or a fragment');
  }
  return url.toString().replace(/\/+$/, '');
}

/**
 * Only loopback addresses: the API hands out tunnels to whoever can reach it, so it must never be
 * reachable from the network.
 */
export function parseListen(value: string): ListenAddress {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535) {
    throw new ConfigError(`--listen must be host:port, e.g. ${DEFAULT_LISTEN}, got "${value}"`);
  }
  const host = match[1].startsWith('[') ? match[1].slice(1, -1) : match[1];
  if (!isLoopbackAddress(host)) {
    throw new ConfigError(`--listen must be a loopback address (127.0.0.1, ::1 or localhost), got "${host}"`);
  }
  return { host, port: Number(match[2]) };
}

export function isLoopbackAddress(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && (host === '::1' || host === '0:0:0:0:0:0:0:1');
}

/** `scheme://host[:port]` exactly as browsers send it in `Origin` (no path, no trailing slash). */
export function parseOrigin(value: string): string {
  let origin: string;
  try {
    origin = new URL(value).origin;
  } catch {
    origin = 'null';
  }
  if (origin === 'null' || origin !== value) {
    throw new ConfigError(
      `--allow-origin must be an origin like https://portal.example.com (scheme, host, optional port; no path), got "${value}"`,
    );
  }
  return origin;
}
