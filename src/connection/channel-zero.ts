/**
 * The requests of channel 0 (the handshake steps, update-secret): a method is sent and one of
 * the methods that may answer it is awaited, typed by the names awaited. A waiter is registered
 * before the send, because over a fast stream the answer can arrive within the write itself.
 *
 * @module
 */
import type { AMQPError } from '../errors.js';
import type { AMQPMethod, MethodByName, MethodInputByName, MethodName } from '../protocol/generated/methods.js';
import { hideFields } from '../redact.js';
import type { FrameTransport } from '../transport/frame-transport.js';

interface ZeroWaiter {
  readonly expect: readonly MethodName[];
  resolve(m: AMQPMethod): void;
  reject(e: AMQPError): void;
}

/** A waiter for one of `expect`: `answer` hands it only a method `expect` names, so of the type awaited. */
function waiter<R extends MethodName>(
  expect: readonly R[],
  resolve: (m: MethodByName[R]) => void,
  reject: (e: AMQPError) => void,
): ZeroWaiter {
  return { expect, resolve: resolve as (m: AMQPMethod) => void, reject };
}

export class ChannelZeroRequests {
  private waiters: ZeroWaiter[] = [];
  /** Set once the connection ended: later requests reject with it at once. */
  private ended: AMQPError | undefined;

  constructor(private readonly transport: Pick<FrameTransport, 'encoder' | 'flush'>) {
    // The encoder's buffers held the SASL response: out of reach of object-walking loggers, as on the connection.
    hideFields(this, 'transport');
  }

  /** Encodes a method on channel 0 and writes it at once. */
  send<N extends MethodName>(name: N, args: MethodInputByName[N]): void {
    this.transport.encoder.method(0, name, args);
    this.transport.flush();
  }

  /** Waits for the next method on channel 0 that is one of `expect`. */
  next<R extends MethodName>(expect: readonly R[]): Promise<MethodByName[R]> {
    if (this.ended !== undefined) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => this.waiters.push(waiter(expect, resolve, reject)));
  }

  /** Sends `name` and waits for one of `expect`; rejects (nothing waiting) when the send throws. */
  request<N extends MethodName, R extends MethodName>(
    name: N,
    args: MethodInputByName[N],
    expect: readonly R[],
  ): Promise<MethodByName[R]> {
    if (this.ended !== undefined) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const w = waiter(expect, resolve, reject);
      this.waiters.push(w);
      try {
        this.send(name, args);
      } catch (err) {
        this.waiters = this.waiters.filter((other) => other !== w);
        reject(err);
      }
    });
  }

  /** True when the oldest waiter waits for a method named `name`. */
  awaits(name: MethodName): boolean {
    return this.waiters[0]?.expect.includes(name) === true;
  }

  /** Hands `m` to the oldest waiter, if it waits for it. */
  answer(m: AMQPMethod): boolean {
    const waiter = this.waiters[0];
    if (waiter === undefined || !waiter.expect.includes(m.name)) return false;
    this.waiters.shift();
    waiter.resolve(m);
    return true;
  }

  /** The connection ended: every waiter rejects with `reason`. */
  rejectAll(reason: AMQPError): void {
    this.ended = reason;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.reject(reason);
  }
}
