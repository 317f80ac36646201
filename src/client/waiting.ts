/**
 * Waiting with an end: sleeps and promises that an abort signal cuts short, and waits bounded by a
 * deadline, shared by the robust client's parts.
 *
 * @module
 */
import { AbortError } from '../errors.js';

/** @internal The error an aborted wait rejects with. */
export function abortError(signal: AbortSignal, what = 'the operation was aborted'): AbortError {
  return new AbortError(what, { cause: signal.reason });
}

/**
 * @internal Waits `ms` milliseconds; rejects with `AbortError` as soon as `signal` fires. The timer and
 * the abort listener are both removed whichever comes first, so nothing is left behind.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * @internal A promise with its settle functions, plus an optional abort signal that rejects it. The
 * abort listener is removed when it settles, so long-lived signals do not collect listeners.
 */
export class Waiter<T> {
  readonly promise: Promise<T>;
  private resolveFn!: (value: T) => void;
  private rejectFn!: (error: unknown) => void;
  private signal: AbortSignal | undefined;
  private onAbort: (() => void) | undefined;
  settled = false;

  constructor(signal?: AbortSignal, what?: string) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    if (signal !== undefined) {
      if (signal.aborted) {
        this.reject(abortError(signal, what));
        return;
      }
      this.signal = signal;
      this.onAbort = () => this.reject(abortError(signal, what));
      signal.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  resolve(value: T): void {
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.resolveFn(value);
  }

  reject(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.rejectFn(error);
  }

  private cleanup(): void {
    if (this.signal !== undefined && this.onAbort !== undefined) {
      this.signal.removeEventListener('abort', this.onAbort);
    }
    this.signal = undefined;
    this.onAbort = undefined;
  }
}

/**
 * Resolves when the callback handed to `register` is called, or at `deadline` (a `Date.now()` time),
 * whichever comes first: the shape of every "drain, but not forever" wait.
 */
export function settledOrDeadline(deadline: number, register: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
    function done(): void {
      clearTimeout(timer);
      resolve();
    }
    register(done);
  });
}

/**
 * @internal Watches items for their abort signals with one listener per signal, however many items
 * share it: EventTarget's add and remove cost O(listeners), which would make a burst sharing one
 * signal quadratic. `onAbort` is called for each item still watched when its signal fires.
 */
export class AbortWatch<T> {
  private readonly watched = new WeakMap<AbortSignal, { items: Set<T>; listener: () => void }>();
  private readonly onAbort: (item: T, signal: AbortSignal) => void;

  constructor(onAbort: (item: T, signal: AbortSignal) => void) {
    this.onAbort = onAbort;
  }

  watch(item: T, signal: AbortSignal): void {
    let watch = this.watched.get(signal);
    if (watch === undefined) {
      // The listener's scope holds nothing of the item (an error's stack keeps that scope alive).
      const items = new Set<T>();
      const listener = () => {
        this.watched.delete(signal);
        for (const watched of items) this.onAbort(watched, signal);
      };
      watch = { items, listener };
      this.watched.set(signal, watch);
      signal.addEventListener('abort', listener, { once: true });
    }
    watch.items.add(item);
  }

  unwatch(item: T, signal: AbortSignal): void {
    const watch = this.watched.get(signal);
    if (watch === undefined) return;
    watch.items.delete(item);
    if (watch.items.size === 0) {
      this.watched.delete(signal);
      signal.removeEventListener('abort', watch.listener);
    }
  }
}
