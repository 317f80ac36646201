/**
 * Shared pieces of the fake-server tests: a registry of servers and connections closed after each
 * file, unhandled-rejection tracking, and ways to observe a promise's outcome. The fake broker itself
 * (scripts, `playBroker`, frame bytes) is in test/support/fake-server.ts and frames.ts.
 */
import assert from 'node:assert/strict';
import { after, type TestContext, test } from 'node:test';
import { ClosedError, connect, type Connection, type ConnectionOptions } from '../../src/index.js';
import {
  type BrokerHooks,
  type FakeScript,
  type FakeServer,
  type FakeServerOptions,
  type HandshakeOptions,
  playBroker,
  startFakeServer,
} from '../support/fake-server.js';
import { sleep, within } from '../support/wait.js';

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

/**
 * The usual script: a handshake without heartbeats (unless `handshake` says otherwise), then the
 * ordinary broker, with `hooks` seeing every input first.
 */
export function serveBroker(hooks: BrokerHooks = {}, handshake: HandshakeOptions = {}): Promise<FakeServer> {
  return serve(async (s) => {
    await s.handshake({ heartbeat: 0, ...handshake });
    await playBroker(s, hooks);
  });
}

/** warren's connect() to a fake server, with heartbeats off unless asked for; closed after the file. */
export async function open(server: FakeServer, options: ConnectionOptions = {}): Promise<Connection> {
  const conn = await connect(server.url, { heartbeat: 0, connectionTimeout: 3000, ...options });
  connections.push(conn);
  return conn;
}

// ------------------------------------------------------------------------------- bounded waits

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

/**
 * Asserts that every pending call rejects within a second, with `cause` itself or a ClosedError
 * caused by it (`causeName` names it in the message).
 */
export async function assertRejectWithCause(
  pending: [what: string, call: Observed<unknown>][],
  cause: unknown,
  causeName: string,
): Promise<void> {
  for (const [what, call] of pending) {
    const outcome = await within(call.settled, 1000, what);
    assert.equal(outcome.ok, false, `${what} must reject`);
    if (!outcome.ok) {
      const e = outcome.error;
      assert.ok(
        e === cause || (e instanceof ClosedError && e.cause === cause),
        `${what} rejects with the ${causeName} (or a ClosedError caused by it), got ${String(e)}`,
      );
    }
  }
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
