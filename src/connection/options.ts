/**
 * Connection options, AMQP URL parsing and defaults.
 *
 * @module
 */
import type * as tls from 'node:tls';
import { InvalidArgumentError } from '../errors.js';
import { redactedPrototype } from '../redact.js';
import type { FieldTable } from '../protocol/field-values.js';
import { DEFAULT_PORT } from '../protocol/generated/constants.js';
import type { CredentialsProvider } from './credentials.js';

/** SASL mechanisms warren can authenticate with. */
export type AuthMechanism = 'PLAIN' | 'AMQPLAIN' | 'EXTERNAL';

/**
 * Everything that says where and how to connect. Every field is optional; what a URL gives is
 * overridden by the same field given here.
 */
export interface ConnectionOptions {
  /** An `amqp://` or `amqps://` URL; its parts fill in the fields not given here. */
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  /**
   * Credentials that change (an OAuth 2 access token, a password from a vault): a function, sync or
   * async, called on every connect, so that a reconnect never reuses an expired secret. When they
   * expire (`expiresAt`, or a JWT's `exp`), the connection calls it again at 80% of their lifetime
   * and hands the new secret to the broker on the live connection (connection.update-secret); a
   * failure is reported as `CredentialsRefreshError` (`'credentialsError'` event). Overrides
   * `username` (if it returns one) and `password`.
   */
  credentials?: CredentialsProvider;
  /** Virtual host, default `/`. */
  vhost?: string;
  /** `true` (or an `amqps://` URL) for TLS; an object is passed on to `tls.connect`. Verification stays on unless you turn it off. */
  tls?: boolean | tls.ConnectionOptions;
  /**
   * Heartbeat interval in seconds that warren asks for. Default 60. As in the Java client and amqplib,
   * 0 means "no preference": the broker's value is taken (the lower of two non-zero values wins).
   */
  heartbeat?: number;
  /** Largest frame warren accepts, in bytes (0 = no limit from our side). Default 131072. */
  frameMax?: number;
  /** Most channels warren asks for (0 = no limit from our side). Default 2047. */
  channelMax?: number;
  /** Milliseconds allowed for the socket to connect and the handshake to finish. Default 10000. */
  connectionTimeout?: number;
  /**
   * Default time limit, in milliseconds, of every synchronous channel method (declare, bind, qos,
   * consume, get, confirm.select, channel.open…) that is not given its own `timeout`: past it the
   * call rejects with `TimeoutError` and its channel is closed. Default 0, no limit (the robust
   * client sets 30000, see `ClientOptions.operationTimeout`).
   */
  operationTimeout?: number;
  /** Shown in the management UI as the connection's name (client property `connection_name`). */
  name?: string;
  /** Extra client properties sent to the broker (merged over warren's own). */
  clientProperties?: FieldTable;
  /** SASL mechanism; default PLAIN (EXTERNAL when a TLS client certificate is given and no password). */
  mechanism?: AuthMechanism;
  /** Locale asked for in connection.start-ok. Default `en_US`. */
  locale?: string;
  /** Abandons the connection attempt. */
  signal?: AbortSignal;
  /** Prints every frame in one readable line (passwords redacted): `true`, or a function that receives each line. */
  debug?: boolean | ((line: string) => void);
}

/** Options with every default filled in. */
export interface ResolvedConnectionOptions {
  host: string;
  port: number;
  username: string;
  password: string;
  credentials: CredentialsProvider | undefined;
  vhost: string;
  tls: boolean | tls.ConnectionOptions;
  heartbeat: number;
  frameMax: number;
  channelMax: number;
  connectionTimeout: number;
  operationTimeout: number;
  name: string | undefined;
  clientProperties: FieldTable;
  mechanism: AuthMechanism;
  locale: string;
  signal: AbortSignal | undefined;
  debug: boolean | ((line: string) => void);
}

export const DEFAULT_FRAME_MAX = 131072;
export const DEFAULT_CHANNEL_MAX = 2047;
export const DEFAULT_HEARTBEAT = 60;
export const DEFAULT_CONNECTION_TIMEOUT = 10_000;

function intInRange(
  value: string | number,
  name: string,
  min: number,
  max: number,
  source: string,
  echo = true,
): number {
  const n = typeof value === 'number' ? value : /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    // The port text is not echoed: a password with an unencoded '/' ends up there.
    const got = echo ? `, got '${value}'` : '';
    throw new InvalidArgumentError(`${name} in ${source} must be a whole number from ${min} to ${max}${got}`);
  }
  return n;
}

function decode(part: string, what: string, url: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new InvalidArgumentError(`the ${what} in ${redactUrl(url)} is not valid percent-encoding`);
  }
}

/**
 * The URL with its password replaced by `***`, for messages and logs: everything from the first `:`
 * after the scheme (`amqp://`, or none at all) up to the LAST `@`, whatever lies between (`@`, `/`,
 * `?` or `#` in a password, a mistyped scheme). A URL with an `@` further on but no password is
 * over-redacted, which is harmless; one without `@` is returned as it is.
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at < 0) return url;
  const start = /^[a-z][a-z0-9+.-]*:\/+/i.exec(url)?.[0].length ?? 0;
  const colon = url.indexOf(':', start);
  if (colon < 0 || colon > at) return url;
  return `${url.slice(0, colon + 1)}***${url.slice(at)}`;
}

/** The URL query parameters that take a whole number: the option each sets, and its range. */
const URL_INTEGERS: Readonly<
  Record<string, { option: 'heartbeat' | 'frameMax' | 'channelMax' | 'connectionTimeout'; min: number; max: number }>
> = {
  heartbeat: { option: 'heartbeat', min: 0, max: 65535 },
  frame_max: { option: 'frameMax', min: 0, max: 0xffffffff },
  channel_max: { option: 'channelMax', min: 0, max: 65535 },
  connection_timeout: { option: 'connectionTimeout', min: 1, max: 3_600_000 },
};

/**
 * Parses an `amqp://user:pass@host:port/vhost?heartbeat=…` URL into options. As in WHATWG URL, the
 * authority ends at the first `/`, `?` or `#`, and the user information runs up to its LAST `@`: an
 * unencoded `@` in a password (`amqp://app:top@secret@host`) stays in the password.
 */
export function parseUrl(url: string): ConnectionOptions {
  const m =
    /^(amqps?):\/\/(?:([^:/?#]*)(?::([^/?#]*))?@)?(\[[^\]]*\]|[^:/?#@]*)(?::([^/?#@]*))?(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(
      url,
    );
  if (m === null) {
    throw new InvalidArgumentError(
      `not an AMQP URL: '${redactUrl(url)}' (expected amqp://user:password@host:port/vhost or amqps://…)`,
    );
  }
  const [, scheme, user, pass, rawHost, rawPort, rawPath, query] = m;
  const secure = scheme!.toLowerCase() === 'amqps';
  const out: ConnectionOptions = { tls: secure };
  if (user !== undefined && user !== '') out.username = decode(user, 'user name', url);
  if (pass !== undefined) out.password = decode(pass, 'password', url);
  if (rawHost !== undefined && rawHost !== '') {
    out.host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : decode(rawHost, 'host', url);
  }
  if (rawPort !== undefined && rawPort !== '')
    out.port = intInRange(rawPort, 'the port', 1, 65535, redactUrl(url), false);
  out.port ??= secure ? 5671 : DEFAULT_PORT;
  if (rawPath?.includes('@')) {
    // 'amqp://user:pa/ss@host': the '/' ended the authority, so the rest of the password would become
    // the vhost (and be shown in errors). An '@' in a vhost must be written %40.
    throw new InvalidArgumentError(
      `the URL ${redactUrl(url)} has an unencoded '@' after its host: percent-encode '/' (%2F) and '@' (%40) in the user name and password, and '@' in the vhost`,
    );
  }
  if (rawPath !== undefined && rawPath.length > 1) {
    // The vhost is the whole path after the first slash: '/%2f' is '/', '/a%2Fb' is 'a/b'.
    out.vhost = decode(rawPath.slice(1), 'vhost', url);
  } else if (rawPath === '/') {
    out.vhost = '/';
  }
  if (query) {
    const src = redactUrl(url);
    for (const pair of query.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const key = decode(eq < 0 ? pair : pair.slice(0, eq), 'query', url);
      const value = decode(eq < 0 ? '' : pair.slice(eq + 1), 'query', url);
      const integer = Object.hasOwn(URL_INTEGERS, key) ? URL_INTEGERS[key] : undefined;
      if (integer !== undefined) {
        out[integer.option] = intInRange(value, key, integer.min, integer.max, src);
        continue;
      }
      switch (key) {
        case 'auth_mechanism': {
          const mech = value.toUpperCase();
          if (mech !== 'PLAIN' && mech !== 'AMQPLAIN' && mech !== 'EXTERNAL') {
            throw new InvalidArgumentError(`auth_mechanism in ${src} must be PLAIN, AMQPLAIN or EXTERNAL`);
          }
          out.mechanism = mech;
          break;
        }
        case 'server_name_indication':
          out.tls = { servername: value };
          break;
        default:
          // Unknown keys (e.g. options of other clients) are ignored, as RabbitMQ's URI spec suggests.
          break;
      }
    }
  }
  return out;
}

/** Merges URL and explicit options and fills in defaults; validates every number. */
/** Logged or serialised, resolved options show where they lead, never the password or TLS material. */
const REDACTED_OPTIONS = redactedPrototype((o: ResolvedConnectionOptions) => ({
  host: o.host,
  port: o.port,
  username: o.username,
  password: '***',
  vhost: o.vhost,
  tls: o.tls !== false,
}));
/** The `clientProperties` of options that give none: only ever read (spread into the start-ok table). */
const NO_CLIENT_PROPERTIES: FieldTable = Object.freeze({});

export function resolveOptions(input: string | ConnectionOptions = {}): ResolvedConnectionOptions {
  const given: ConnectionOptions = typeof input === 'string' ? { url: input } : input;
  if (typeof given !== 'object' || given === null) {
    throw new InvalidArgumentError('connection options must be a URL string or an options object');
  }
  const fromUrl = given.url === undefined ? {} : parseUrl(given.url);
  const o: ConnectionOptions = { ...fromUrl };
  for (const [k, v] of Object.entries(given)) if (v !== undefined && k !== 'url') Object.assign(o, { [k]: v });
  if (fromUrl.tls && typeof fromUrl.tls === 'object' && typeof given.tls === 'object') {
    o.tls = { ...fromUrl.tls, ...given.tls };
  }
  if (o.credentials !== undefined && typeof o.credentials !== 'function') {
    throw new InvalidArgumentError(
      'credentials must be a function returning { password, username?, expiresAt? } (or a promise of it)',
    );
  }
  const tlsOption = o.tls ?? false;
  const port = intInRange(o.port ?? (tlsOption ? 5671 : DEFAULT_PORT), 'port', 1, 65535, 'the options');
  const hasClientCert = typeof tlsOption === 'object' && (tlsOption.cert !== undefined || tlsOption.pfx !== undefined);
  const resolved: ResolvedConnectionOptions = {
    host: o.host ?? '127.0.0.1',
    port,
    username: o.username ?? 'guest',
    password: o.password ?? 'guest',
    credentials: o.credentials,
    vhost: o.vhost ?? '/',
    tls: tlsOption,
    heartbeat: intInRange(o.heartbeat ?? DEFAULT_HEARTBEAT, 'heartbeat', 0, 65535, 'the options'),
    frameMax: intInRange(o.frameMax ?? DEFAULT_FRAME_MAX, 'frameMax', 0, 0xffffffff, 'the options'),
    channelMax: intInRange(o.channelMax ?? DEFAULT_CHANNEL_MAX, 'channelMax', 0, 65535, 'the options'),
    connectionTimeout: intInRange(
      o.connectionTimeout ?? DEFAULT_CONNECTION_TIMEOUT,
      'connectionTimeout',
      1,
      3_600_000,
      'the options',
    ),
    operationTimeout: intInRange(o.operationTimeout ?? 0, 'operationTimeout', 0, 2 ** 31 - 1, 'the options'),
    name: o.name,
    clientProperties: o.clientProperties ?? NO_CLIENT_PROPERTIES,
    mechanism:
      o.mechanism ??
      (hasClientCert && given.password === undefined && fromUrl.password === undefined && o.credentials === undefined
        ? 'EXTERNAL'
        : 'PLAIN'),
    locale: o.locale ?? 'en_US',
    signal: o.signal,
    debug: o.debug ?? false,
  };
  // Set after the literal, which TypeScript would not type-check with a `__proto__` entry.
  Object.setPrototypeOf(resolved, REDACTED_OPTIONS);
  return resolved;
}
