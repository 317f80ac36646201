/**
 * Bounded waits for every test: a test that waits must fail with a message naming what it waited
 * for, never hang until the runner's own timeout.
 *
 *   const ok = await within(conn.close(), 2000, 'close');           // rejects after 2 s
 *   await waitFor(() => got.length === 3, { what: 'three deliveries' });
 *   const r = await settlesWithin(p, 200);                           // { settled: false } after 200 ms
 */
import type { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/** Rejects when `promise` has not settled within `ms`, naming `what`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether `promise` settled within `ms` (and its value if it did); for tests that expect it not to. */
export async function settlesWithin<T>(
  promise: Promise<T>,
  ms: number,
): Promise<{ settled: true; value: T } | { settled: false }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ settled: false }>((resolve) => {
    timer = setTimeout(() => resolve({ settled: false }), ms);
  });
  try {
    return await Promise.race([promise.then((value) => ({ settled: true as const, value })), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface WaitForOptions {
  /** Time limit in milliseconds (default 10 000). */
  timeout?: number;
  /** Polling interval in milliseconds (default 10). */
  interval?: number;
  /** What is awaited, for the error message. */
  what?: string;
  /** Appended to the error message: the state of the test when the wait gave up. */
  state?: () => string;
}

/** Polls `predicate` until it holds; throws after `timeout` ms naming `what` (and `state()`). */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  { timeout = 10_000, interval = 10, what = 'condition', state }: WaitForOptions = {},
): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${state ? `; ${state()}` : ''}`);
    }
    await sleep(interval);
  }
}

/** Resolves with the first of the named events `emitter` reports, or rejects after `ms`. */
export function firstEvent(
  emitter: NodeJS.EventEmitter,
  names: string[],
  ms: number,
): Promise<{ name: string; arg: unknown }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`none of ${names.join('/')} within ${ms} ms`)), ms);
    for (const name of names) {
      emitter.once(name, (arg: unknown) => {
        clearTimeout(timer);
        resolve({ name, arg });
      });
    }
  });
}

/** Resolves with the arguments of the next `event`; rejects after `timeout` ms. */
export function nextEvent<T extends unknown[] = unknown[]>(
  emitter: EventEmitter,
  event: string,
  timeout = 10_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onEvent = (...args: unknown[]) => {
      clearTimeout(timer);
      resolve(args as T);
    };
    const timer = setTimeout(() => {
      emitter.off(event, onEvent);
      reject(new Error(`no '${event}' event within ${timeout} ms`));
    }, timeout);
    emitter.once(event, onEvent);
  });
}
