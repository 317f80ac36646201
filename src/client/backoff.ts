/**
 * Reconnect delays (exponential backoff with full jitter) and small waiting helpers shared by the
 * robust client's parts.
 *
 * @module
 */
import { AbortError, InvalidArgumentError } from '../errors.js';

/**
 * How long the client waits between rounds of connection attempts.
 *
 * The delay before round `n` (counting from 1 after the first failure) is a random number between 0
 * and `min(maxDelay, initialDelay * factor^(n-1))`: "full jitter", so that many clients cut off at
 * the same moment do not all come back at the same moment.
 *
 * @example
 * ```ts
 * createClient({ urls, backoff: { initialDelay: 100, maxDelay: 10_000, factor: 2 } });
 * ```
 */
export interface BackoffOptions {
  /** Upper bound of the first delay, in milliseconds. Default 250. */
  initialDelay?: number;
  /** Upper bound of every delay, in milliseconds. Default 30000. */
  maxDelay?: number;
  /** Growth of the upper bound from one round to the next. Default 2. */
  factor?: number;
}

/**
 * The backoff policy with defaults filled in: computes the delay before each round of connection
 * attempts (full jitter below an exponentially growing ceiling).
 *
 * @example
 * ```ts
 * const policy = new Backoff({ initialDelay: 100, maxDelay: 5000 });
 * policy.ceiling(3); // 400
 * policy.delay(3);   // a random whole number of ms from 0 to 400
 * ```
 */
export class Backoff {
  readonly initialDelay: number;
  readonly maxDelay: number;
  readonly factor: number;
  /** Replaceable for tests; returns a number in [0, 1). */
  random: () => number = Math.random;

  constructor(options: BackoffOptions = {}) {
    this.initialDelay = nonNegative(options.initialDelay ?? 250, 'backoff.initialDelay');
    this.maxDelay = nonNegative(options.maxDelay ?? 30_000, 'backoff.maxDelay');
    this.factor = nonNegative(options.factor ?? 2, 'backoff.factor');
    if (this.factor < 1) throw new InvalidArgumentError(`backoff.factor must be at least 1, got ${this.factor}`);
  }

  /** The upper bound of the delay before round `round` (1-based). */
  ceiling(round: number): number {
    if (round <= 0) return 0;
    // Computed in floating point; Infinity (a huge round count) is capped like any other value.
    return Math.min(this.maxDelay, this.initialDelay * this.factor ** (round - 1));
  }

  /** A random delay in [0, ceiling(round)]. */
  delay(round: number): number {
    return Math.floor(this.random() * (this.ceiling(round) + 1));
  }
}

function nonNegative(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${name} must be a finite number of at least 0, got ${String(value)}`);
  }
  return value;
}

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
