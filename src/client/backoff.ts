/**
 * Reconnect delays: exponential backoff with full jitter.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';

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

  /**
   * A random delay in [ceiling(round) / 2, ceiling(round)]: for retries that must be spread over
   * time (a broker that refuses for a while), where full jitter could run them all at once.
   */
  spacedDelay(round: number): number {
    const ceiling = this.ceiling(round);
    return Math.floor(ceiling / 2 + this.random() * (ceiling / 2 + 1));
  }
}

function nonNegative(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(`${name} must be a finite number of at least 0, got ${String(value)}`);
  }
  return value;
}
