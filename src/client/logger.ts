/**
 * The `logger` option: where the client reports what it would otherwise print as a process warning
 * or keep to itself (reconnects, refused topology replays, handler errors nobody listens for, a
 * broker cancel). It takes the shape pino, bunyan, winston and `console` share: `debug`, `info`,
 * `warn`, `error`, each called with a message and an object of fields. A logger that throws is
 * contained (reported once as a `UserCodeError` process warning) and the client carries on.
 *
 * @module
 */
import { callUserCode } from '../user-code.js';

/**
 * A logger: `console`, a pino or winston logger, or anything with these four methods.
 *
 * @example
 * ```ts
 * createClient({ urls, logger: console });
 * createClient({ urls, logger: pino() });
 * ```
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): unknown;
  info(message: string, fields?: Record<string, unknown>): unknown;
  warn(message: string, fields?: Record<string, unknown>): unknown;
  error(message: string, fields?: Record<string, unknown>): unknown;
}

/** @internal */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/**
 * @internal Calls `logger[level](message, fields)`. The message says everything by itself (pino
 * reads a second argument only for `%` placeholders); console and winston also show the fields.
 * Never throws.
 */
export function log(
  logger: Logger | undefined,
  level: LogLevel,
  message: string,
  fields?: Record<string, unknown>,
): void {
  if (logger === undefined) return;
  const method = (logger as Partial<Logger>)[level];
  if (typeof method !== 'function') return;
  callUserCode(`logger.${level}`, method, logger, `warren: ${message}`, ...(fields === undefined ? [] : [fields]));
}
