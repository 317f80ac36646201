/**
 * The arguments of the declare and bind methods, made from what the API was given: names checked,
 * the spec's defaults for flags left out, friendly options mapped to `x-` arguments.
 *
 * @module
 */
import type { FieldTable } from '../protocol/field-values.js';
import type { MethodInputByName } from '../protocol/generated/methods.js';
import type { ExchangeDeclareOptions, QueueDeclareOptions } from './channel-options.js';
import { requireName } from './checks.js';
import { exchangeArguments, queueArguments } from './declare-options.js';

/** The flags exchange.declare and queue.declare share; each `false` unless given. */
function declareFlags(options: { passive?: boolean; durable?: boolean; autoDelete?: boolean }) {
  return {
    passive: options.passive ?? false,
    durable: options.durable ?? false,
    autoDelete: options.autoDelete ?? false,
  };
}

/** Checks the names and options of an `exchangeDeclare`; throws `InvalidArgumentError`. */
export function exchangeDeclareArgs(
  exchange: string,
  type: string,
  options: ExchangeDeclareOptions,
): MethodInputByName['exchange.declare'] {
  requireName(exchange, 'exchange name');
  requireName(type, 'exchange type');
  return {
    exchange,
    type,
    ...declareFlags(options),
    internal: options.internal ?? false,
    arguments: exchangeArguments(options),
  };
}

/** Checks the name and options of a `queueDeclare`; throws `InvalidArgumentError`. */
export function queueDeclareArgs(queue: string, options: QueueDeclareOptions): MethodInputByName['queue.declare'] {
  requireName(queue, 'queue name');
  return {
    queue,
    ...declareFlags(options),
    exclusive: options.exclusive ?? false,
    arguments: queueArguments(options),
  };
}

/** The two ends each bind and unbind method names: exchange to exchange, or queue to exchange. */
export interface BindingEnds {
  'exchange.bind': { destination: string; source: string };
  'exchange.unbind': { destination: string; source: string };
  'queue.bind': { queue: string; exchange: string };
  'queue.unbind': { queue: string; exchange: string };
}

type BindEnds = BindingEnds[keyof BindingEnds];

/** Checks the names of a bind or unbind (of a queue or an exchange); throws `InvalidArgumentError`. */
export function bindArgs(
  ends: { destination: string; source: string },
  routingKey: string,
  args: FieldTable,
): MethodInputByName['exchange.bind'];
export function bindArgs(
  ends: { queue: string; exchange: string },
  routingKey: string,
  args: FieldTable,
): MethodInputByName['queue.bind'];
export function bindArgs(
  ends: BindEnds,
  routingKey: string,
  args: FieldTable,
): MethodInputByName['exchange.bind' | 'queue.bind'];
export function bindArgs(
  ends: BindEnds,
  routingKey: string,
  args: FieldTable,
): MethodInputByName['exchange.bind' | 'queue.bind'] {
  if ('queue' in ends) {
    requireName(ends.queue, 'queue name');
    requireName(ends.exchange, 'exchange name');
  } else {
    requireName(ends.destination, 'destination exchange');
    requireName(ends.source, 'source exchange');
  }
  return { ...ends, routingKey, arguments: args };
}
