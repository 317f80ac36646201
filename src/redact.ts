/**
 * Keeping secrets out of what walks objects. A password (and a TLS private key) lives in a few
 * fields only: the robust client's endpoints, a connection's options, its socket and transport
 * (the TLS socket keeps its options; the encoder's buffers held the SASL response). Those fields are
 * made non-enumerable, so `Object.entries`, `JSON.stringify` and loggers that walk enumerable
 * properties never reach them; every public object also has a redacted `toJSON` and `util.inspect`
 * form. Every layer may import this module (it imports nothing of warren).
 *
 * @module
 */
import { inspect } from 'node:util';

/**
 * Makes the named own fields of `target` non-enumerable (still readable and writable), so that
 * nothing that walks enumerable properties reaches what they hold.
 */
export function hideFields(target: object, ...names: string[]): void {
  for (const name of names) {
    // A field not yet assigned is created hidden, so that a later assignment does not make it visible.
    const descriptor = Object.getOwnPropertyDescriptor(target, name) ?? {
      value: undefined,
      writable: true,
      configurable: true,
    };
    if (descriptor.enumerable === false) continue;
    Object.defineProperty(target, name, { ...descriptor, enumerable: false });
  }
}

/** `util.inspect.custom`, for classes that give `console.log` a redacted form. */
export const inspectCustom: typeof inspect.custom = inspect.custom;

/**
 * A prototype for plain objects (such as resolved options; classes define their own) whose
 * `toJSON` and `util.inspect` show `describe(object)` instead of its fields. Both are inherited and
 * not enumerable, so the objects made with it own no functions and their keys stay their fields.
 */
export function redactedPrototype<T extends object>(describe: (target: T) => Record<string, unknown>): object {
  const view = function (this: T): Record<string, unknown> {
    return describe(this);
  };
  return Object.defineProperties(
    {},
    {
      toJSON: { value: view, configurable: true, writable: true },
      [inspectCustom]: { value: view, configurable: true, writable: true },
    },
  );
}
