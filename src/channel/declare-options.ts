/**
 * The friendly declare options (`messageTtl`, `deadLetterExchange`, `queueType`, ...) that users
 * know from amqplib, mapped to the `x-` arguments RabbitMQ reads. Options are checked before anything
 * is sent: an unknown key or a value of the wrong type is refused with `InvalidArgumentError`, since
 * the broker would otherwise declare the queue without what the caller asked for.
 *
 * Precedence: an option and an `arguments` entry for the same `x-` key must agree; when they differ
 * the declare is refused (neither silently wins).
 *
 * @module
 */
import { InvalidArgumentError } from '../errors.js';
import type { FieldTable, FieldValue } from '../protocol/field-values.js';

/**
 * Queue options that become `x-` arguments of `queue.declare`.
 *
 * @example
 * ```ts
 * await ch.queueDeclare('jobs', { durable: true, messageTtl: 60_000, deadLetterExchange: 'dlx', queueType: 'quorum' });
 * ```
 */
export interface QueueArgumentOptions {
  /** `x-message-ttl`: milliseconds a message may wait in the queue. */
  messageTtl?: number;
  /** `x-expires`: milliseconds the queue may go unused before the broker deletes it. */
  expires?: number;
  /** `x-dead-letter-exchange`: where rejected, expired or overflowing messages go (`''`: the default exchange). */
  deadLetterExchange?: string;
  /** `x-dead-letter-routing-key`: the routing key dead letters get (default: their own). */
  deadLetterRoutingKey?: string;
  /** `x-max-length`: at most this many ready messages. */
  maxLength?: number;
  /** `x-max-length-bytes`: at most this many bytes of ready message bodies. */
  maxLengthBytes?: number;
  /** `x-max-priority`: the highest message priority the queue honours (1–255; classic queues). */
  maxPriority?: number;
  /** `x-overflow`: what a full queue does. */
  overflow?: 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
  /** `x-queue-type`. Streams and quorum queues must be durable, non-exclusive, non-auto-delete. */
  queueType?: 'classic' | 'quorum' | 'stream';
  /** `x-single-active-consumer`: one consumer at a time gets the messages; the next takes over when it goes. */
  singleActiveConsumer?: boolean;
}

/**
 * Exchange options that become `x-`/broker arguments of `exchange.declare`.
 *
 * @example
 * ```ts
 * await ch.exchangeDeclare('orders', 'topic', { alternateExchange: 'unrouted' });
 * ```
 */
export interface ExchangeArgumentOptions {
  /** `alternate-exchange`: where messages that no binding routes go. */
  alternateExchange?: string;
}

type Kind = 'ttl' | 'count' | 'string' | 'boolean' | 'priority' | readonly string[];

interface Mapping {
  readonly argument: string;
  readonly kind: Kind;
}

const QUEUE_ARGUMENTS: Readonly<Record<keyof QueueArgumentOptions, Mapping>> = {
  messageTtl: { argument: 'x-message-ttl', kind: 'count' },
  expires: { argument: 'x-expires', kind: 'ttl' },
  deadLetterExchange: { argument: 'x-dead-letter-exchange', kind: 'string' },
  deadLetterRoutingKey: { argument: 'x-dead-letter-routing-key', kind: 'string' },
  maxLength: { argument: 'x-max-length', kind: 'count' },
  maxLengthBytes: { argument: 'x-max-length-bytes', kind: 'count' },
  maxPriority: { argument: 'x-max-priority', kind: 'priority' },
  overflow: { argument: 'x-overflow', kind: ['drop-head', 'reject-publish', 'reject-publish-dlx'] },
  queueType: { argument: 'x-queue-type', kind: ['classic', 'quorum', 'stream'] },
  singleActiveConsumer: { argument: 'x-single-active-consumer', kind: 'boolean' },
};

const EXCHANGE_ARGUMENTS: Readonly<Record<keyof ExchangeArgumentOptions, Mapping>> = {
  alternateExchange: { argument: 'alternate-exchange', kind: 'string' },
};

/** Keys that are not broker arguments: the method's flags, and per-call options (`signal`, `timeout`). */
const QUEUE_FLAGS = ['durable', 'exclusive', 'autoDelete', 'passive', 'arguments', 'signal', 'timeout'];
const EXCHANGE_FLAGS = ['durable', 'autoDelete', 'internal', 'passive', 'arguments', 'signal', 'timeout'];

function checkValue(method: string, key: string, mapping: Mapping, value: unknown): FieldValue {
  const { kind } = mapping;
  const fail = (expected: string): never => {
    throw new InvalidArgumentError(`${method}: ${key} must be ${expected}, got ${describe(value)}`);
  };
  if (Array.isArray(kind)) {
    if (typeof value !== 'string' || !kind.includes(value)) fail(`one of ${kind.map((k) => `'${k}'`).join(', ')}`);
    return value as string;
  }
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') fail('a string');
      return value as string;
    case 'boolean':
      if (typeof value !== 'boolean') fail('true or false');
      return value as boolean;
    case 'count':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail('a whole number ≥ 0');
      return value as number;
    case 'ttl':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) fail('a whole number of ms ≥ 1');
      return value as number;
    case 'priority':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 255) {
        fail('a whole number from 1 to 255');
      }
      return value as number;
  }
  return fail('valid');
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function sameValue(a: FieldValue | undefined, b: FieldValue): boolean {
  if (a === b) return true;
  // A number given in `arguments` may have been written as a bigint (or the other way round).
  return (typeof a === 'bigint' || typeof a === 'number') && (typeof b === 'number' || typeof b === 'bigint')
    ? BigInt(a) === BigInt(b)
    : false;
}

function hint(key: string, mappings: Readonly<Record<string, Mapping>>, flags: readonly string[]): string {
  const squash = (s: string): string => s.toLowerCase().replace(/^x-/, '').replace(/[-_]/g, '');
  const wanted = squash(key);
  for (const [name, mapping] of Object.entries(mappings)) {
    if (squash(name) === wanted || squash(mapping.argument) === wanted) {
      return `did you mean ${name}? (or arguments: { '${mapping.argument}': ... })`;
    }
  }
  if (key.startsWith('x-') || key.includes('-')) return `broker arguments go in arguments: { '${key}': ... }`;
  return `known options: ${[...flags.filter((f) => f !== 'signal' && f !== 'timeout'), ...Object.keys(mappings)].join(', ')}; other broker arguments go in arguments: { 'x-…': ... }`;
}

function buildArguments(
  method: string,
  options: object,
  mappings: Readonly<Record<string, Mapping>>,
  flags: readonly string[],
): FieldTable {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError(`${method}: options must be an object, got ${describe(options)}`);
  }
  const given = options as Record<string, unknown>;
  const explicit = given.arguments;
  if (explicit !== undefined && (explicit === null || typeof explicit !== 'object' || Array.isArray(explicit))) {
    throw new InvalidArgumentError(`${method}: arguments must be a field table (a plain object)`);
  }
  let args: FieldTable | undefined;
  for (const key of Object.keys(given)) {
    const value = given[key];
    if (value === undefined) continue;
    const mapping = mappings[key];
    if (mapping === undefined) {
      if (flags.includes(key)) continue;
      throw new InvalidArgumentError(`${method}: unknown option '${key}'; ${hint(key, mappings, flags)}`);
    }
    const checked = checkValue(method, key, mapping, value);
    const table = explicit as FieldTable | undefined;
    if (table !== undefined && mapping.argument in table && !sameValue(table[mapping.argument], checked)) {
      throw new InvalidArgumentError(
        `${method}: ${key} (${describe(checked)}) contradicts arguments['${mapping.argument}'] (${describe(table[mapping.argument])}); give one of them`,
      );
    }
    args ??= { ...(table ?? {}) };
    args[mapping.argument] = checked;
  }
  return args ?? (explicit as FieldTable | undefined) ?? {};
}

/**
 * The `arguments` table of a `queue.declare`: the explicit `arguments` merged with the friendly
 * options. Throws `InvalidArgumentError` for an unknown key, a value of the wrong type, or an option
 * that contradicts an explicit argument.
 *
 * @example
 * ```ts
 * queueArguments({ messageTtl: 1000 }); // { 'x-message-ttl': 1000 }
 * ```
 */
export function queueArguments(options: object): FieldTable {
  return buildArguments('queueDeclare', options, QUEUE_ARGUMENTS, QUEUE_FLAGS);
}

/** The `arguments` table of an `exchange.declare`; see {@link queueArguments}. */
export function exchangeArguments(options: object): FieldTable {
  return buildArguments('exchangeDeclare', options, EXCHANGE_ARGUMENTS, EXCHANGE_FLAGS);
}
