/**
 * Helpers for the integration tests that run against the real RabbitMQ at 127.0.0.1:5672.
 *
 *   const conn = await openConnection();                 // AMQP_URL unless told otherwise
 *   const q = uniqueName('q');                           // warren-test-<pid>-<n>-q
 *   await withChannel(async (ch) => { ... });            // opens and always closes
 *   const conns = await listConnections();               // the broker's view (rabbitmqctl, ~1 s)
 *   const fx = brokerFixture();                          // fx.conn, fx.ch (confirm mode), fx.res for a file
 *
 * Rules the integration tests follow: unique names per process, everything they declare is deleted,
 * every connection is closed (the test process must exit by itself), and nothing broker-wide changes.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before } from 'node:test';
import { type Channel, type Connection, type ConnectionOptions, connect, type Message } from '../../src/index.js';
import { within } from './wait.js';

/** The broker the integration tests use. */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

let counter = 0;

/** A name no other test process or earlier test uses: `warren-test-<pid>-<n>-<prefix>`. */
export function uniqueName(prefix = 'x'): string {
  counter += 1;
  return `warren-test-${process.pid}-${counter}-${prefix}`;
}

/** Runs `rabbitmqctl` with a time limit; resolves with stdout, rejects with stderr in the message. */
export function rabbitmqctl(...args: string[]): Promise<string> {
  return rabbitmqctlWithInput(undefined, ...args);
}

/** Runs `rabbitmqctl` with `input` on its stdin (e.g. `import_definitions` without a path). */
export function rabbitmqctlWithInput(input: string | undefined, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'rabbitmqctl',
      args,
      { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${err.message}\n${stderr}`, { cause: err }));
        else resolve(stdout);
      },
    );
    child.stdin?.end(input ?? '');
  });
}

/** Runs `rabbitmqctl <args> --formatter json` and parses the output. */
export async function rabbitmqctlJson<T>(...args: string[]): Promise<T> {
  const out = await rabbitmqctl(...args, '--formatter', 'json');
  return JSON.parse(out) as T;
}

/** rabbitmqctl prints field tables as `[[key, type, value], ...]`; this turns one into an object. */
export type CtlTable = [string, string, CtlValue][];
export type CtlValue = string | number | boolean | null | CtlTable | CtlValue[];

/** Converts rabbitmqctl's `[[key, type, value]]` table form into a plain object (nested tables too). */
export function ctlTable(table: CtlTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, type, value] of table) {
    out[key] = type === 'table' && Array.isArray(value) ? ctlTable(value as CtlTable) : value;
  }
  return out;
}

/** One row of `rabbitmqctl list_connections` with the columns the tests read. */
export interface BrokerConnection {
  name: string;
  clientProperties: Record<string, unknown>;
  frameMax: number;
  channelMax: number;
  timeout: number;
  authMechanism: string;
  user: string;
  vhost: string;
  channels: number;
}

interface RawConnection {
  name: string;
  client_properties: CtlTable;
  frame_max: number;
  channel_max: number;
  timeout: number;
  auth_mechanism: string;
  user: string;
  vhost: string;
  channels: number;
}

/** The broker's list of connections (other processes' too: filter by `connection_name`). */
export async function listConnections(): Promise<BrokerConnection[]> {
  const rows = await rabbitmqctlJson<RawConnection[]>(
    'list_connections',
    'name',
    'client_properties',
    'frame_max',
    'channel_max',
    'timeout',
    'auth_mechanism',
    'user',
    'vhost',
    'channels',
  );
  return rows.map((r) => ({
    name: r.name,
    clientProperties: ctlTable(r.client_properties),
    frameMax: r.frame_max,
    channelMax: r.channel_max,
    timeout: r.timeout,
    authMechanism: r.auth_mechanism,
    user: r.user,
    vhost: r.vhost,
    channels: r.channels,
  }));
}

/** The broker's row for the connection opened with `{ name: connectionName }`. */
export function findConnection(rows: BrokerConnection[], connectionName: string): BrokerConnection {
  const found = rows.filter((r) => r.clientProperties.connection_name === connectionName);
  if (found.length !== 1) {
    throw new Error(`expected one broker connection named '${connectionName}', found ${found.length}`);
  }
  return found[0]!;
}

/**
 * The Erlang pid (`<rabbit@host.1.2.3>`) of the connection opened with `{ name: connectionName }`, as
 * `rabbitmqctl close_connection` wants it (the JSON formatter prints pids in a form it does not take).
 */
export async function connectionPid(connectionName: string): Promise<string> {
  const out = await rabbitmqctl('-q', 'list_connections', '--no-table-headers', 'pid', 'client_properties');
  const needle = `{"connection_name",${JSON.stringify(connectionName)}}`;
  const lines = out.split('\n').filter((line) => line.includes(needle));
  if (lines.length !== 1) throw new Error(`expected one connection named '${connectionName}', found ${lines.length}`);
  return lines[0]!.split('\t')[0]!;
}

/** Opens a connection to AMQP_URL (or `url`) with the given options. */
export function openConnection(options: ConnectionOptions = {}, url: string = AMQP_URL): Promise<Connection> {
  return connect(url, options);
}

/** Opens a connection, runs `fn`, and closes the connection whatever happens. */
export async function withConnection<T>(
  fn: (conn: Connection) => Promise<T>,
  options: ConnectionOptions = {},
  url: string = AMQP_URL,
): Promise<T> {
  const conn = await openConnection(options, url);
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

/** Opens a channel on `conn` (or a new connection), runs `fn`, and closes what it opened. */
export async function withChannel<T>(fn: (ch: Channel, conn: Connection) => Promise<T>, conn?: Connection): Promise<T> {
  if (conn === undefined) return withConnection((c) => withChannel(fn, c));
  const ch = await conn.openChannel();
  try {
    return await fn(ch, conn);
  } finally {
    await ch.close();
  }
}

/**
 * Names declared by a test file, deleted by `cleanup()` (call it in `after`) on a fresh connection, so
 * cleanup works even when the test's own connection or channel was closed by an error.
 */
export class Resources {
  private readonly queues = new Set<string>();
  private readonly exchanges = new Set<string>();

  /** A unique queue name that `cleanup()` will delete. */
  queue(prefix = 'q'): string {
    const name = uniqueName(prefix);
    this.queues.add(name);
    return name;
  }

  /** A unique exchange name that `cleanup()` will delete. */
  exchange(prefix = 'x'): string {
    const name = uniqueName(prefix);
    this.exchanges.add(name);
    return name;
  }

  /** Registers a name made elsewhere (e.g. a server-named queue). */
  trackQueue(name: string): string {
    this.queues.add(name);
    return name;
  }

  async cleanup(): Promise<void> {
    if (this.queues.size === 0 && this.exchanges.size === 0) return;
    await withConnection(async (conn) => {
      // Deleting what does not exist is fine in RabbitMQ 3.x, so this needs no passive checks. A
      // delete the broker refuses closes the channel: the rest go on on a new one, then it rethrows.
      let ch = await conn.openChannel();
      const failures: unknown[] = [];
      const attempt = async (remove: (channel: typeof ch) => Promise<unknown>): Promise<void> => {
        try {
          await remove(ch);
        } catch (err) {
          failures.push(err);
          if (!ch.isOpen) ch = await conn.openChannel();
        }
      };
      for (const q of this.queues) await attempt((c) => c.queueDelete(q));
      for (const x of this.exchanges) await attempt((c) => c.exchangeDelete(x));
      await ch.close();
      if (failures.length > 0) throw new AggregateError(failures, 'some test queues or exchanges could not be deleted');
    });
    this.queues.clear();
    this.exchanges.clear();
  }
}

/** What `brokerFixture` sets up for a test file. */
export interface BrokerFixture {
  /** Queues and exchanges deleted after the file. */
  readonly res: Resources;
  /** Open from `before` to `after`. */
  conn: Connection;
  /** A confirm-mode channel on `conn`, to set up and inspect. */
  ch: Channel;
}

/**
 * The setup of an integration test file: in `before`, one connection and a confirm-mode channel; in
 * `after`, the connection closed and then everything `res` named deleted.
 */
export function brokerFixture(): BrokerFixture {
  const fx = { res: new Resources() } as BrokerFixture;
  before(async () => {
    fx.conn = await connect(AMQP_URL);
    fx.ch = await fx.conn.openChannel();
    await fx.ch.confirmSelect();
  });
  after(async () => {
    await fx.conn.close();
    await fx.res.cleanup();
  });
  return fx;
}

/** A promise with its resolve and reject exposed. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Consumes from `queue` on `ch` until `count` messages arrived (acking each unless noAck), then
 * cancels the consumer and resolves with them.
 */
export async function consumeN(ch: Channel, queue: string, count: number, ms = 10_000): Promise<Message[]> {
  const got: Message[] = [];
  const done = deferred<void>();
  if (count === 0) done.resolve();
  const consumer = await ch.basicConsume(queue, {}, (msg) => {
    got.push(msg);
    msg.ack();
    if (got.length === count) done.resolve();
  });
  try {
    await within(done.promise, ms, `${count} messages from ${queue} (got ${got.length})`);
  } finally {
    await consumer.cancel();
  }
  return got;
}

/** Fetches everything ready in `queue` with basic.get, acking each. */
export async function drain(ch: Channel, queue: string): Promise<Message[]> {
  const out: Message[] = [];
  for (;;) {
    const msg = await ch.basicGet(queue);
    if (msg === null) return out;
    msg.ack();
    out.push(msg);
  }
}

/** Ready messages in `queue`, as a passive declare reports them. */
export async function readyCount(ch: Channel, queue: string): Promise<number> {
  return (await ch.queueDeclare(queue, { passive: true })).messageCount;
}

/**
 * Ready messages in `queue` once the broker has had `ms` to finish requeueing. RabbitMQ requeues
 * (nack, reject, a closed channel's unacked messages) asynchronously: a passive declare, even on the
 * same channel, can answer before the requeue. Use this where a requeue that should NOT happen must be
 * given the chance to show up.
 */
export async function settledReadyCount(ch: Channel, queue: string, ms = 150): Promise<number> {
  await sleep(ms);
  return readyCount(ch, queue);
}

/** Everything reachable from an error: message, String(), stack and the same for its causes. */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  let e: unknown = err;
  for (let depth = 0; e !== undefined && e !== null && depth < 10; depth++) {
    if (e instanceof Error) {
      parts.push(e.message, String(e), e.stack ?? '');
      e = e.cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join('\n');
}

/** Awaits `promise` and returns what it rejected with; fails when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
