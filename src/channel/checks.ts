/**
 * Checks of what a caller passes, made before anything is encoded, so a mistake is reported as
 * `InvalidArgumentError` at the call that made it and nothing half-written is ever sent.
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import { type BasicProperties, PROPERTY_NAMES } from '../protocol/generated/properties.js';

/**
 * A name the caller must give. `null` or `undefined` would otherwise encode as '' — which the broker
 * reads as "the last queue declared on this channel" or the default exchange, not as an error.
 */
export function requireName(value: unknown, what: string): void {
  if (typeof value !== 'string') {
    throw new InvalidArgumentError(`${what} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
}

const PROPERTY_SET: ReadonlySet<string> = new Set(PROPERTY_NAMES);

/** Unknown property names would be dropped without a word; name the mistake instead. */
function checkPropertyNames(properties: BasicProperties): void {
  for (const key in properties) {
    if (PROPERTY_SET.has(key)) continue;
    const hint =
      key === 'persistent'
        ? ' (use deliveryMode: 2 for a persistent message)'
        : ` (message properties are ${[...PROPERTY_SET].join(', ')}; put custom values in headers)`;
    throw new InvalidArgumentError(`unknown message property '${key}'${hint}`);
  }
}

/** Checks a publish; throws what `basicPublish` rejects with. */
export function checkPublish(
  exchange: unknown,
  routingKey: unknown,
  body: unknown,
  properties: BasicProperties | undefined,
): void {
  if (!Buffer.isBuffer(body)) {
    throw new InvalidArgumentError(
      `message body must be a Buffer, got ${body === null ? 'null' : typeof body}; use Buffer.from(...)`,
    );
  }
  if (properties !== undefined && (typeof properties !== 'object' || properties === null)) {
    throw new InvalidArgumentError(`message properties must be an object, e.g. { contentType: 'text/plain' }`);
  }
  requireName(exchange, 'exchange name');
  requireName(routingKey, 'routing key');
  if (properties !== undefined) checkPropertyNames(properties);
}
