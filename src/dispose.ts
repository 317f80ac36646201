/**
 * `await using` on Node versions without `Symbol.asyncDispose` (20.0–20.3): the classes define
 * `[Symbol.asyncDispose]()`, and `disposable()` also installs their closing method under the keys
 * that transpilers (TypeScript and esbuild helpers) fall back to, without polyfilling the global
 * Symbol. Every layer may import this module (it imports nothing of warren).
 *
 * @module
 */

/** Makes `prototype[method]()` what `await using` calls where `Symbol.asyncDispose` is missing. */
export function disposable(prototype: object, method: string): void {
  if (typeof Symbol.asyncDispose === 'symbol') return;
  for (const key of [Symbol.for('nodejs.asyncDispose'), Symbol.for('Symbol.asyncDispose')]) {
    Object.defineProperty(prototype, key, {
      value: function (this: Record<string, () => Promise<unknown>>) {
        return this[method]!();
      },
      configurable: true,
      writable: true,
    });
  }
}
