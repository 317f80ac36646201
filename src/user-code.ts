/**
 * Containment of user code. Everything warren calls that the application wrote — event listeners,
 * message handlers' `handlerError` reports, the `debug` frame printer, OpenTelemetry SDK callbacks —
 * may throw (or return a promise that rejects). Such a throw never reaches warren's own code: it is
 * caught, reported once as a process warning named `UserCodeError` (code `WARREN_USER_CODE`), and
 * warren carries on as if the call had returned.
 *
 * Every layer may import this module (it imports nothing of warren).
 *
 * @module
 */
import { EventEmitter, errorMonitor } from 'node:events';
import { brandErrorClasses, isBrandedInstance } from './errors.js';

/** `code` of every {@link UserCodeError}, and of the process warning that carries it. */
export const USER_CODE_ERROR_CODE = 'WARREN_USER_CODE';

/**
 * What warren reports when code of the application that it called threw: a listener, the `debug`
 * printer, a tracing SDK. It is emitted as a process warning (`process.on('warning', …)`), never
 * thrown; `cause` is what the application's code threw, `source` says which call it was.
 *
 * @example
 * ```ts
 * process.on('warning', (w) => {
 *   if (w instanceof UserCodeError) log.error(`${w.source} threw`, w.cause);
 * });
 * ```
 */
export class UserCodeError extends Error {
  /** Holds across copies of warren in one process, as for {@link AMQPError}. */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass `instanceof` was asked about
    return isBrandedInstance(this, value);
  }

  override readonly name = 'UserCodeError';
  readonly code = USER_CODE_ERROR_CODE;
  /** Which call threw, e.g. `Client 'disconnect' listener`. */
  readonly source: string;

  constructor(source: string, cause: unknown) {
    super(
      `warren: the ${source} threw (warren contained it and carried on): ${describe(cause)}`,
      cause === undefined ? {} : { cause },
    );
    this.source = source;
  }
}

brandErrorClasses({ UserCodeError });

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return String(value);
  } catch {
    return 'an unprintable value';
  }
}

/** Errors already reported: one that passes through several layers is reported once. */
const reported = new WeakSet<object>();

/**
 * Reports that user code threw `error`: once per thrown object, as a process warning carrying a
 * {@link UserCodeError}. Never throws.
 */
export function reportUserCodeError(source: string, error: unknown): void {
  if (typeof error === 'object' && error !== null) {
    if (reported.has(error)) return;
    reported.add(error);
  }
  try {
    process.emitWarning(new UserCodeError(source, error));
  } catch {
    // emitWarning itself failed (e.g. a monkey-patched process): there is nowhere left to report.
  }
}

/** @internal True for a promise or any other object with a `then` method (what `await` waits for). */
export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * Calls user code `fn`, containing what it throws and what its returned promise rejects with (both
 * reported through {@link reportUserCodeError}). Returns what `fn` returned, or `undefined` if it threw.
 */
export function callUserCode<A extends unknown[], R>(
  source: string,
  fn: (...args: A) => R,
  thisArg: unknown,
  ...args: A
): R | undefined {
  try {
    const result = Reflect.apply(fn, thisArg, args) as R;
    if (isThenable(result)) {
      result.then(undefined, (err: unknown) => reportUserCodeError(source, err));
    }
    return result;
  } catch (err) {
    reportUserCodeError(source, err);
    return undefined;
  }
}

/**
 * An `EventEmitter` whose `emit` can never throw because of a listener: every listener runs, in
 * order, even when an earlier one threw (Node's own `emit` stops at the first throw and throws it
 * into the emitting code); what a listener throws, or an `async` listener rejects with, is reported
 * once through {@link reportUserCodeError}. An `'error'` event nobody listens to still throws, as in
 * Node; warren emits `'error'` only when someone listens.
 *
 * @example
 * ```ts
 * client.on('disconnect', () => { throw new Error('bug in my logging'); });
 * // the client still reconnects; the process gets a 'warning' with a UserCodeError
 * ```
 */
export class SafeEmitter<T extends Record<keyof T, unknown[]>> extends EventEmitter<T> {}

/**
 * What `super()` in SafeEmitter runs instead of EventEmitter's constructor, which gives every emitter
 * a listener table (a dictionary-mode object of about 200 bytes) and three fields more, while most
 * channels, consumers and connections never get a listener. It sets nothing: EventEmitter.prototype
 * holds `_events` (undefined) and `_eventsCount` (0), its methods read a missing table as "no
 * listeners" and make it on the first `on()`, as for emitters whose constructor never ran
 * (`util.inherits` style); the listener limit falls back to `defaultMaxListeners`. An emitter that
 * never gets a listener thus costs no field at all.
 */
function EventEmitterWithoutTable(): void {}
EventEmitterWithoutTable.prototype = EventEmitter.prototype;
Object.setPrototypeOf(EventEmitterWithoutTable, EventEmitter); // EventEmitter's static methods
Object.setPrototypeOf(SafeEmitter, EventEmitterWithoutTable);

type AnyListener = (...args: unknown[]) => unknown;

function safeEmit(this: EventEmitter, eventName: string | symbol, ...args: unknown[]): boolean {
  const listeners = this.rawListeners(eventName) as AnyListener[];
  if (listeners.length === 0) return EventEmitter.prototype.emit.call(this, eventName, ...args);
  const source = `${this.constructor.name} '${String(eventName)}' listener`;
  if (eventName === 'error') {
    for (const monitor of this.rawListeners(errorMonitor) as AnyListener[])
      callUserCode(source, monitor, this, ...args);
  }
  for (const listener of listeners) callUserCode(source, listener, this, ...args);
  return true;
}

// Replaces the implementation only: the class keeps EventEmitter's typed `emit` signature.
Object.defineProperty(SafeEmitter.prototype, 'emit', { value: safeEmit, writable: true, configurable: true });
