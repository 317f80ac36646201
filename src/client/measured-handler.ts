/**
 * A subscription's handler with its time and outcome recorded in the client's metrics (only with
 * a meter provider; without one the handler runs as it is).
 *
 * @module
 */
import type { ClientMetrics } from '../tracing/metrics.js';
import type { InternalHandler } from './subscription-options.js';

/** @internal `handler`, timed from now: call it when the handler is about to run. */
export function measured(handler: InternalHandler, metrics: ClientMetrics, queue: string): InternalHandler {
  const started = performance.now();
  const done = (failed: boolean, error: unknown): void =>
    metrics.processed(queue, (performance.now() - started) / 1000, failed, error);
  return (m, isCurrent, channel) => {
    let result: void | Promise<void>;
    try {
      result = handler(m, isCurrent, channel);
    } catch (err) {
      done(true, err);
      throw err;
    }
    if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
      return (result as Promise<void>).then(
        () => done(false, undefined),
        (err: unknown) => {
          done(true, err);
          throw err;
        },
      );
    }
    done(false, undefined);
    return result;
  };
}
