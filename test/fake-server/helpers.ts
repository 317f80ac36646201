/**
 * Shared pieces of the fake-server tests: a registry of servers closed after each file, bounded
 * waits, unhandled-rejection tracking, a loop that plays the ordinary broker part of a script, and
 * raw content frames for tests that cut them into odd TCP chunks.
 */
import assert from 'node:assert/strict';
import { after, type TestContext, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Connection, type ConnectionOptions } from '../../src/index.js';
import { encodeContentHeader } from '../../src/protocol/content-header.js';
import { FrameEncoder } from '../../src/protocol/frame-encoder.js';
import { FRAME_BODY, FRAME_HEADER, FRAME_HEARTBEAT, FRAME_METHOD } from '../../src/protocol/generated/constants.js';
import type { MethodInputByName, MethodName } from '../../src/protocol/generated/methods.js';
import type { BasicProperties } from '../../src/protocol/generated/properties.js';
import { Writer } from '../../src/protocol/writer.js';
import {
  type FakeConnection,
  type FakeScript,
  type FakeServer,
  type FakeServerOptions,
  type ReceivedContent,
  type ReceivedFrame,
  type ReceivedMethod,
  rawFrame,
  startFakeServer,
} from '../support/fake-server.js';

export { sleep };

// ------------------------------------------------------------------------ unhandled rejections

/** Every unhandled rejection seen in this process (each test file runs in its own process). */
export const unhandledRejections: unknown[] = [];
process.on('unhandledRejection', (reason: unknown) => {
  unhandledRejections.push(reason);
});

/**
 * Declares a test that must also leave no unhandled rejection behind: after the body, it lets
 * timers and microtasks run a little and fails if any rejection went unhandled meanwhile.
 */
export function fakeTest(
  name: string,
  fn: (t: TestContext) => Promise<void>,
  options: { timeout?: number; todo?: string } = {},
): void {
  test(name, { timeout: options.timeout ?? 15_000, ...(options.todo ? { todo: options.todo } : {}) }, async (t) => {
    const before = unhandledRejections.length;
    try {
      await fn(t);
    } catch (err) {
      if (options.todo === undefined) throw err;
      // A known bug: one short line is enough (the reporter repeats failures, and scripts/test.mjs
      // reads its counts from the last 4000 characters of output).
      const line = (err instanceof Error ? err.message : String(err)).split('\n')[0]?.slice(0, 160) ?? '';
      const short = new Error(line);
      short.stack = `Error: ${line}`;
      throw short;
    }
    await sleep(30);
    const fresh = unhandledRejections.slice(before).map((r) => (r instanceof Error ? `${r.name}: ${r.message}` : r));
    assert.deepEqual(fresh, [], 'no rejection may go unhandled');
  });
}

// ------------------------------------------------------------------------------------ servers

const servers: FakeServer[] = [];
const connections: Connection[] = [];
after(async () => {
  // A test that failed half-way may leave a connection open: close it, but do not wait for a script
  // that stopped answering; closing the servers then drops whatever is left.
  await Promise.all(connections.filter((c) => c.isOpen).map((c) => within(c.close(), 500, 'close').catch(() => {})));
  for (const s of servers) await s.close();
});

/** Starts a fake server that is closed when the file ends; waits are bounded at 3 s by default. */
export async function serve(script?: FakeScript, options: FakeServerOptions = {}): Promise<FakeServer> {
  const s = await startFakeServer(script, { timeoutMs: 3000, ...options });
  servers.push(s);
  return s;
}

/** warren's connect() to a fake server, with heartbeats off unless asked for; closed after the file. */
export async function open(server: FakeServer, options: ConnectionOptions = {}): Promise<Connection> {
  const conn = await connect(server.url, { heartbeat: 0, connectionTimeout: 3000, ...options });
  connections.push(conn);
  return conn;
}

// ------------------------------------------------------------------------------- bounded waits

/** Rejects when `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`hang: ${what} did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A promise's outcome, observed at once so that its rejection is never unhandled. */
export interface Observed<T> {
  readonly outcome: Outcome<T> | undefined;
  /** Resolves with the outcome once the promise settles. */
  readonly settled: Promise<Outcome<T>>;
}

export function observe<T>(promise: Promise<T>): Observed<T> {
  let outcome: Outcome<T> | undefined;
  const settled = promise.then(
    (value): Outcome<T> => {
      outcome = { ok: true, value };
      return outcome;
    },
    (error: unknown): Outcome<T> => {
      outcome = { ok: false, error };
      return outcome;
    },
  );
  return {
    get outcome() {
      return outcome;
    },
    settled,
  };
}

/** The error a promise rejects with (within `ms`); fails if it resolves. */
export async function rejection(promise: Promise<unknown>, ms = 4000, what = 'the promise'): Promise<unknown> {
  const outcome = await within(observe(promise).settled, ms, what);
  if (outcome.ok) assert.fail(`${what} resolved, but it should have rejected`);
  return outcome.error;
}

/** Asserts `err` is an instance of `type` and returns it typed. */
export function assertInstance<T>(err: unknown, type: abstract new (...args: never[]) => T, what = 'the error'): T {
  if (!(err instanceof type)) {
    const got = err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err);
    assert.fail(`${what} should be a ${type.name}, got ${got}`);
  }
  return err;
}

/** Counts an emitter's events by name. */
export function countEvents(emitter: NodeJS.EventEmitter, name: string): { count: number; args: unknown[][] } {
  const c = { count: 0, args: [] as unknown[][] };
  emitter.on(name, (...args: unknown[]) => {
    c.count++;
    c.args.push(args);
  });
  return c;
}

// ------------------------------------------------------------------------ the broker's part

/** What `nextInput` returns: a method, or a publish with its whole content. */
export type Input = { kind: 'method'; m: ReceivedMethod } | { kind: 'publish'; c: ReceivedContent<'basic.publish'> };

/**
 * The next thing the client sent, skipping heartbeats: a method, or a basic.publish with its header
 * and body (which `recvMethod` alone cannot skip).
 */
export async function nextInput(s: FakeConnection, timeoutMs?: number): Promise<Input> {
  const opts = timeoutMs === undefined ? {} : { timeoutMs };
  for (;;) {
    const f = await s.recv(opts);
    if (f.type === FRAME_HEARTBEAT) continue;
    if (f.type !== FRAME_METHOD || f.method === undefined) {
      throw new Error(`fake server: expected a method, got frame type ${f.type} on channel ${f.channel}`);
    }
    const m: ReceivedMethod = { channel: f.channel, name: f.method.name, args: f.method.args };
    if (m.name !== 'basic.publish') return { kind: 'method', m };
    let h = await s.recv(opts);
    while (h.type === FRAME_HEARTBEAT) h = await s.recv(opts);
    if (h.type !== FRAME_HEADER || h.header === undefined) throw new Error('fake server: publish without a header');
    const parts: Buffer[] = [];
    let size = 0;
    while (size < h.header.bodySize) {
      const b = await s.recv(opts);
      if (b.type === FRAME_HEARTBEAT) continue;
      if (b.type !== FRAME_BODY) throw new Error(`fake server: expected a body frame, got type ${b.type}`);
      parts.push(b.payload);
      size += b.payload.length;
    }
    return {
      kind: 'publish',
      c: {
        channel: m.channel,
        name: 'basic.publish',
        args: m.args as ReceivedContent<'basic.publish'>['args'],
        properties: h.header.properties,
        body: Buffer.concat(parts),
        bodyFrames: parts.length,
      },
    };
  }
}

export interface BrokerHooks {
  /**
   * Sees every input first; return true when it handled it (the default answer is then not sent),
   * or 'stop' to end the loop.
   */
  onInput?: (input: Input, s: FakeConnection) => boolean | 'stop' | Promise<boolean | 'stop'>;
}

/**
 * Plays the ordinary broker: answers channel.open/close, confirm.select, queue.declare, basic.qos,
 * basic.consume and basic.cancel; acks nothing (tests decide); answers connection.close with
 * close-ok and returns. Also returns when the client goes away.
 */
export async function playBroker(s: FakeConnection, hooks: BrokerHooks = {}): Promise<void> {
  let tags = 0;
  for (;;) {
    let input: Input;
    try {
      input = await nextInput(s, 10_000);
    } catch (err) {
      if (s.isClosed) return;
      throw err;
    }
    const handled = (await hooks.onInput?.(input, s)) ?? false;
    if (handled === 'stop') return;
    if (handled || input.kind !== 'method') continue;
    const { channel, name, args } = input.m;
    switch (name) {
      case 'channel.open':
        s.send(channel, 'channel.open-ok', {});
        break;
      case 'channel.close':
        s.send(channel, 'channel.close-ok', {});
        break;
      case 'confirm.select':
        s.send(channel, 'confirm.select-ok', {});
        break;
      case 'basic.qos':
        s.send(channel, 'basic.qos-ok', {});
        break;
      case 'queue.declare': {
        const queue = (args as MethodInputByName['queue.declare']).queue || 'amq.gen-fake';
        s.send(channel, 'queue.declare-ok', { queue, messageCount: 0, consumerCount: 0 });
        break;
      }
      case 'basic.consume': {
        const tag = (args as MethodInputByName['basic.consume']).consumerTag || `ctag-${++tags}`;
        s.send(channel, 'basic.consume-ok', { consumerTag: tag });
        break;
      }
      case 'basic.cancel':
        s.send(channel, 'basic.cancel-ok', { consumerTag: (args as MethodInputByName['basic.cancel']).consumerTag });
        break;
      case 'connection.close':
        s.send(0, 'connection.close-ok', {});
        s.end();
        return;
      default:
        break;
    }
  }
}

/** The frames the client sent after its last `name` method (all of them if it sent none). */
export function framesAfter(s: FakeConnection, name: MethodName): ReceivedFrame[] {
  let i = s.received.length - 1;
  while (i >= 0 && s.received[i]?.method?.name !== name) i--;
  return s.received.slice(i + 1);
}

// ------------------------------------------------------------------------------- raw content

/** A content-carrying method with its header and body frames, as bytes (body split at frameMax − 8). */
export function contentBytes<N extends 'basic.deliver' | 'basic.get-ok' | 'basic.return'>(
  frameMax: number,
  channel: number,
  name: N,
  args: MethodInputByName[N],
  properties: BasicProperties,
  body: Buffer,
): Buffer {
  const enc = new FrameEncoder(frameMax);
  enc.method(channel, name, args);
  const chunks: Buffer[] = enc.take().map((c) => Buffer.from(c));
  chunks.push(contentHeader(channel, body.length, properties));
  for (let off = 0; off < body.length; off += frameMax - 8) {
    chunks.push(rawFrame(FRAME_BODY, channel, body.subarray(off, Math.min(off + frameMax - 8, body.length))));
  }
  return Buffer.concat(chunks);
}

/** A content header frame (class basic) announcing `bodySize`. */
export function contentHeader(channel: number, bodySize: number, properties: BasicProperties = {}): Buffer {
  const w = new Writer(256);
  encodeContentHeader(w, bodySize, properties);
  return rawFrame(FRAME_HEADER, channel, Buffer.from(w.buf.subarray(0, w.pos)));
}

/** One method frame as bytes. */
export function methodBytes<N extends MethodName>(channel: number, name: N, args: MethodInputByName[N]): Buffer {
  const enc = new FrameEncoder(131072);
  enc.method(channel, name, args);
  return Buffer.concat(enc.take());
}
