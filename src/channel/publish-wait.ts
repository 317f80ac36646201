/**
 * What a `basicPublish` promise waits for: the broker's confirm in confirm mode, otherwise the
 * socket taking the bytes. Either wait can be abandoned through an `AbortSignal`.
 *
 * @module
 */
import { type AMQPError, AbortError } from '../errors.js';
import type { ChannelWriter, PublishTarget } from '../connection/endpoint.js';
import type { ConfirmTracker, PendingConfirm } from './confirms.js';

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Makes a waiter end early with `AbortError` when `signal` fires, and removes its listener once the
 * waiter settles either way, so a long-lived signal does not collect one listener per publish.
 */
export function abortable(signal: AbortSignal, waiter: { resolve(): void; reject(error: AMQPError): void }): void {
  const abortError = () => new AbortError('publish aborted', { cause: signal.reason });
  if (signal.aborted) {
    waiter.reject(abortError());
    return;
  }
  const { resolve, reject } = waiter;
  const onAbort = () => reject(abortError());
  signal.addEventListener('abort', onAbort, { once: true });
  waiter.resolve = () => {
    signal.removeEventListener('abort', onAbort);
    resolve();
  };
  waiter.reject = (error) => {
    signal.removeEventListener('abort', onAbort);
    reject(error);
  };
}

/** A promise of the confirm of the publish just written to `target`. */
export function confirmWait(
  confirms: ConfirmTracker,
  target: PublishTarget,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { exchange, routingKey, mandatory } = target;
  return new Promise<void>((resolve, reject) => {
    const pending: PendingConfirm = {
      resolve,
      reject,
      mandatory,
      exchange,
      routingKey,
      returned: undefined,
      settled: false,
    };
    confirms.add(pending);
    if (signal !== undefined) abortable(signal, pending);
  });
}

/**
 * Resolved at once while the connection's output is below its high-water mark; otherwise once it
 * drained. The wait also ends when the connection dies: `stillOpen` then throws, since the message
 * did not reach the broker.
 */
export function writableWait(
  writer: ChannelWriter,
  stillOpen: () => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (writer.writable) return RESOLVED;
  const wait = writer.waitWritable().then(stillOpen);
  if (signal === undefined) return wait;
  return new Promise<void>((resolve, reject) => {
    const waiter = { resolve, reject };
    abortable(signal, waiter);
    wait.then(
      () => waiter.resolve(),
      (err: AMQPError) => waiter.reject(err),
    );
  });
}
