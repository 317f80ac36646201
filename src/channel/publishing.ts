/**
 * The publishing side of a channel: a publish is checked, encoded for the next flush, and its
 * promise waits for the broker's confirm in confirm mode, otherwise for the socket taking the
 * bytes. Either wait can be abandoned through an `AbortSignal`.
 *
 * @module
 */
import { type AMQPError, AbortError, InvalidArgumentError } from '../errors.js';
import type { ChannelWriter, PublishTarget } from '../connection/endpoint.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { PublishOptions } from './channel-options.js';
import { checkPublish } from './checks.js';
import { ConfirmTracker, type PendingConfirm } from './confirms.js';

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Makes a waiter end early with `AbortError` when `signal` fires, and removes its listener once the
 * waiter settles either way, so a long-lived signal does not collect one listener per publish.
 */
function abortable(signal: AbortSignal, waiter: { resolve(): void; reject(error: AMQPError): void }): void {
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
function confirmWait(confirms: ConfirmTracker, target: PublishTarget, signal: AbortSignal | undefined): Promise<void> {
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
function writableWait(writer: ChannelWriter, stillOpen: () => void, signal: AbortSignal | undefined): Promise<void> {
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

export class Publishing {
  private tracker: ConfirmTracker | undefined;
  /** Where `publish` is writing to, reused from call to call so a publish allocates nothing for it. */
  private readonly target: { exchange: string; routingKey: string; mandatory: boolean } = {
    exchange: '',
    routingKey: '',
    mandatory: false,
  };

  /**
   * @param assertCanSend throws once the channel can no longer send: a publish that waited for the
   *   socket then fails, since its message did not reach the broker.
   */
  constructor(
    private readonly writer: ChannelWriter,
    private readonly channelId: number,
    private readonly assertCanSend: () => void,
  ) {}

  /** The confirm bookkeeping, from confirm.select-ok on. */
  get confirms(): ConfirmTracker | undefined {
    return this.tracker;
  }

  startConfirms(): void {
    this.tracker ??= new ConfirmTracker();
  }

  /** `basicPublish` once the channel is known to be open. */
  publish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties: BasicProperties | undefined,
    options: PublishOptions | undefined,
  ): Promise<void> {
    const target = this.target;
    target.exchange = exchange;
    target.routingKey = routingKey;
    target.mandatory = options?.mandatory ?? false;
    try {
      this.write(target, body, properties);
    } catch (err) {
      return Promise.reject(err);
    }
    const signal = options?.signal;
    if (this.tracker !== undefined) return confirmWait(this.tracker, target, signal);
    return writableWait(this.writer, this.assertCanSend, signal);
  }

  /** `publishTracked` once the channel is known to be open: `pending` is told of the confirm. */
  publishTracked(body: Buffer, properties: BasicProperties | undefined, pending: PendingConfirm): void {
    const tracker = this.tracker;
    if (tracker === undefined) throw new InvalidArgumentError('publishTracked needs confirm mode (confirmSelect)');
    this.write(pending, body, properties);
    tracker.add(pending);
  }

  /** Checks a publish and encodes it for the next flush; throws what `basicPublish` rejects with. */
  private write(target: PublishTarget, body: Buffer, properties: BasicProperties | undefined): void {
    checkPublish(target.exchange, target.routingKey, body, properties);
    this.writer.sendPublish(this.channelId, target, properties, body);
    this.writer.scheduleFlush();
  }
}
