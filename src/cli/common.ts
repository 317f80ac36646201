/**
 * What every `warren` subcommand shares: global options, the connection, output, exit codes, stdin,
 * header parsing and the JSON form of a message.
 *
 * @module
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Channel } from '../channel/channel.js';
import type { Message } from '../channel/message.js';
import { type Client, createClient } from '../client/client.js';
import { type Connection, connect } from '../connect.js';
import { redactUrl } from '../connection/options.js';
import {
  AbortError,
  AMQPError,
  ChannelError,
  ConnectionError,
  ConsumerCancelled,
  InvalidArgumentError,
  MessageReturned,
  PublishNacked,
  SocketError,
  TimeoutError,
} from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { FieldTable, FieldValue } from '../protocol/field-values.js';
import { type CommandSpec, type OptionDef, type Parsed, UsageError } from './args.js';

/** The broker used when neither `--url` nor `AMQP_URL` says otherwise. */
export const DEFAULT_URL = 'amqp://guest:guest@127.0.0.1:5672';

/** Options every subcommand accepts. */
export const GLOBAL_OPTIONS = {
  url: {
    type: 'string',
    value: 'URL',
    description: `Broker URL (default: $AMQP_URL, else ${DEFAULT_URL})`,
  },
  json: { type: 'boolean', description: 'Machine-readable output: JSON (one object per line for streams)' },
  name: {
    type: 'string',
    value: 'NAME',
    description: "Connection name shown by the broker (default 'warren-cli <command>')",
  },
  debug: {
    type: 'boolean',
    description: 'Print every AMQP frame to stderr (passwords redacted); same as WARREN_DEBUG=frames',
  },
} as const satisfies Record<string, OptionDef>;

/**
 * Exit codes, so that scripts can tell failures apart without parsing messages.
 * Documented in docs/cli.md.
 */
export const EXIT = {
  OK: 0,
  /** Anything not listed below. */
  FAILURE: 1,
  /** The command line is wrong. */
  USAGE: 2,
  /** The broker could not be reached, refused the login or dropped the connection. */
  CONNECTION: 3,
  /** The broker refused an operation (missing queue, access refused, precondition failed) or cancelled a consumer. */
  CHANNEL: 4,
  /** A published message was nacked or returned unroutable. */
  NOT_CONFIRMED: 5,
  /** Nothing arrived within `--timeout`. */
  TIMEOUT: 6,
  /** Interrupted (Ctrl-C) before the work was done. */
  INTERRUPTED: 130,
} as const;

/** Where a command writes and reads; tests and the demo swap these. */
export interface Io {
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable;
  stdin: Readable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

/** What a running command receives besides its arguments. */
export interface Context {
  io: Io;
  /** Fires on Ctrl-C (SIGINT) or SIGTERM: long-running commands stop cleanly when it does. */
  signal: AbortSignal;
  /** The subcommand name, e.g. `queue declare`. */
  command: string;
}

/** The options shared by every command, as parsed. */
export interface GlobalValues {
  url: string | undefined;
  name: string | undefined;
  json: boolean;
  debug: boolean;
}

/** A subcommand: its spec and what it does. Returns the exit code. */
export interface Command<O extends Record<string, OptionDef> = Record<string, OptionDef>> {
  spec: CommandSpec<O>;
  run(parsed: Parsed<O>, ctx: Context): Promise<number>;
}

/** Declares a command, inferring its option types. */
export function command<const O extends Record<string, OptionDef>>(c: Command<O>): Command<O> {
  return c;
}

/** The broker URL from `--url`, else `AMQP_URL`, else the local default. */
export function brokerUrl(opts: GlobalValues, env: NodeJS.ProcessEnv): string {
  return opts.url ?? (env.AMQP_URL !== undefined && env.AMQP_URL !== '' ? env.AMQP_URL : DEFAULT_URL);
}

/** Opens a connection named after the command, so it is recognisable in the management UI. */
export function open(opts: GlobalValues, ctx: Context): Promise<Connection> {
  return connect(brokerUrl(opts, ctx.io.env), {
    name: opts.name ?? `warren-cli ${ctx.command}`,
    ...(opts.debug ? { debug: (line: string) => ctx.io.stderr.write(`${line}\n`) } : {}),
  });
}

/**
 * Starts the robust client for a long-running command (consume, rpc-server, rpc), which then
 * survives a broker restart or a cut connection. Unlike an application, a command line tool must
 * not wait for a broker that is not there: the first connection attempt that fails ends the command
 * with its error (exit code 3); once connected, losing the connection only prints a note on stderr
 * while the client reconnects.
 */
export async function openClient(opts: GlobalValues, ctx: Context): Promise<Client> {
  const client = createClient(brokerUrl(opts, ctx.io.env), {
    name: opts.name ?? `warren-cli ${ctx.command}`,
    backoff: { initialDelay: 100, maxDelay: 5000 },
    ...(opts.debug ? { debug: (line: string) => ctx.io.stderr.write(`${line}\n`) } : {}),
  });
  const giveUp = new AbortController();
  let firstError: unknown;
  const onFailed = (err: unknown): void => {
    firstError ??= err;
    giveUp.abort();
  };
  const onInterrupt = (): void => giveUp.abort();
  client.on('connectFailed', onFailed);
  ctx.signal.addEventListener('abort', onInterrupt, { once: true });
  try {
    await client.ready(giveUp.signal);
  } catch (err) {
    await client.close().catch(() => {});
    throw firstError ?? (ctx.signal.aborted ? new AbortError('interrupted while connecting') : err);
  } finally {
    client.off('connectFailed', onFailed);
    ctx.signal.removeEventListener('abort', onInterrupt);
  }
  const note = (text: string): void => {
    ctx.io.stderr.write(opts.json ? `${JSON.stringify({ notice: text })}\n` : `warren ${ctx.command}: ${text}\n`);
  };
  client.on('disconnect', (err) => note(`connection lost (${err.code}), reconnecting`));
  client.on('connect', ({ generation }) => {
    if (generation > 1) note('reconnected');
  });
  return client;
}

/** Closes the client, ignoring a failure to close one that has stopped already. */
export async function closeClient(client: Client | undefined): Promise<void> {
  try {
    await client?.close();
  } catch {
    // Stopped already (e.g. refused credentials): nothing left to release.
  }
}

/** The exit code that tells what kind of failure `err` is. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return EXIT.USAGE;
  if (err instanceof AbortError) return EXIT.INTERRUPTED;
  if (err instanceof TimeoutError) return EXIT.TIMEOUT;
  if (err instanceof PublishNacked || err instanceof MessageReturned) return EXIT.NOT_CONFIRMED;
  if (err instanceof ConnectionError) return EXIT.CONNECTION;
  if (err instanceof ChannelError || err instanceof ConsumerCancelled) return EXIT.CHANNEL;
  if (err instanceof InvalidArgumentError) return EXIT.USAGE;
  return EXIT.FAILURE;
}

function errorName(err: unknown): string {
  return err instanceof Error ? err.name : 'Error';
}

function errorCode(err: unknown): string {
  if (err instanceof AMQPError || err instanceof UsageError) return err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'ERROR';
}

/** One line that says what failed, typed by name and code, never with a password in it. */
/** What to check when the broker cannot be reached at all. */
function withHint(err: unknown, message: string): string {
  const unreachable = /\b(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT)\b/.test(message);
  return err instanceof SocketError && unreachable
    ? `${message}; is the broker running? check --url or AMQP_URL`
    : message;
}

export function formatError(err: unknown, program: string, json: boolean): string {
  const raw = err instanceof Error ? err.message : String(err);
  // Errors from warren never hold passwords, but a message that quotes a URL from elsewhere might.
  const message = withHint(err, raw.replace(/amqps?:\/\/[^\s'"]+/gi, (u) => redactUrl(u)).replace(/\s*\n\s*/g, ' '));
  if (json) {
    const out: Record<string, unknown> = { error: { name: errorName(err), code: errorCode(err), message } };
    const replyCode = (err as { replyCode?: unknown } | null)?.replyCode;
    if (typeof replyCode === 'number') (out.error as Record<string, unknown>).replyCode = replyCode;
    return JSON.stringify(out);
  }
  return `${program}: ${errorName(err)} [${errorCode(err)}]: ${message}`;
}

/** Writes one line (or one JSON object per line in `--json` mode). */
export function emit(ctx: Context, json: boolean, text: string, data: unknown): void {
  ctx.io.stdout.write(json ? `${toJson(data)}\n` : `${text}\n`);
}

/** JSON that also copes with bigint, Buffer and Date values from field tables. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') {
      return { base64: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    return v;
  });
}

/** Reads all of stdin. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

/** Reads stdin line by line (blank lines skipped). */
export async function* readLines(stream: Readable): AsyncGenerator<string> {
  const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    for await (const line of rl) if (line !== '') yield line;
  } finally {
    rl.close();
  }
}

/**
 * Parses `-H key=value` (a string) and `-H key:=json` (a typed value: number, boolean, array, object),
 * as HTTPie does, into a field table.
 */
export function parseHeaders(entries: readonly string[], flag = '-H'): FieldTable {
  const table: FieldTable = {};
  for (const entry of entries) {
    const typed = /^([^=:]+):=(.*)$/s.exec(entry);
    if (typed) {
      try {
        table[typed[1]!] = JSON.parse(typed[2]!) as FieldValue;
      } catch {
        throw new UsageError(`${flag} ${entry}: the value after ':=' must be JSON (e.g. 3, true, "text", [1,2])`);
      }
      continue;
    }
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} ${entry}: expected key=value or key:=json`);
    table[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return table;
}

/** The body as text when it is valid UTF-8, else base64 with a marker. */
export function bodyForJson(body: Buffer): { body: string; bodyEncoding?: 'base64' } {
  const text = body.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(body)) return { body: text };
  return { body: body.toString('base64'), bodyEncoding: 'base64' };
}

/** A delivered message as a plain JSON-able object. */
export function messageToJson(msg: Message): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg.properties as BasicProperties)) {
    if (v !== undefined) props[k] = v instanceof Date ? v.toISOString() : v;
  }
  return {
    ...bodyForJson(msg.body),
    properties: props,
    exchange: msg.exchange,
    routingKey: msg.routingKey,
    redelivered: msg.redelivered,
    deliveryTag: msg.deliveryTag,
  };
}

/** Resolves after `ms`, or early when `signal` fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Resolves when `signal` fires. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Closes a connection, ignoring a failure to close one that is already gone. */
export async function closeQuietly(conn: Connection | undefined): Promise<void> {
  try {
    await conn?.close();
  } catch {
    // Already closed by the broker or the network: nothing left to release.
  }
}

/** Formats a count with thousands separators. */
/** `1 message`, `2 messages`, `1,000 messages`. */
export function count(n: number, noun: string): string {
  return `${fmtInt(n)} ${n === 1 ? noun : `${noun}s`}`;
}

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Runs `work` on a fresh channel and closes everything afterwards. */
export async function withChannel<T>(opts: GlobalValues, ctx: Context, work: (ch: Channel) => Promise<T>): Promise<T> {
  const conn = await open(opts, ctx);
  try {
    const ch = await conn.openChannel();
    const result = await work(ch);
    await ch.close();
    return result;
  } finally {
    await closeQuietly(conn);
  }
}

/** `-n COUNT`: the option of the commands that stop after so many `what`. */
export function countOption(what: string) {
  return {
    type: 'number',
    short: 'n',
    integer: true,
    min: 1,
    value: 'COUNT',
    description: `Exit after this many ${what}`,
  } as const;
}
