/**
 * `warren queue declare|delete|purge|info NAME`.
 *
 * @module
 */
import type { Channel } from '../../channel/channel.js';
import type { FieldTable } from '../../protocol/field-values.js';
import { UsageError } from '../args.js';
import {
  type Context,
  command,
  count,
  EXIT,
  emit,
  GLOBAL_OPTIONS,
  type GlobalValues,
  withChannel,
  parseHeaders,
} from '../common.js';

const NAME = [{ name: 'NAME', description: 'Queue name' }] as const;

/**
 * Runs one queue method on a fresh channel and prints its reply: `text(reply)` for people, the
 * reply (with `queue` unless the reply names it) for --json.
 */
async function queueMethod<R extends object>(
  o: GlobalValues,
  ctx: Context,
  queue: string,
  method: (ch: Channel) => Promise<R>,
  text: (r: R) => string,
): Promise<number> {
  const r = await withChannel(o, ctx, method);
  emit(ctx, o.json, text(r), { queue, ...r });
  return EXIT.OK;
}

/** A queue's counts, as declare and info print them. */
const counts = (r: { messageCount: number; consumerCount: number }, ready = ''): string =>
  `${count(r.messageCount, 'message')}${ready}, ${count(r.consumerCount, 'consumer')}`;

export const queueDeclare = command({
  spec: {
    name: 'queue declare',
    summary: 'Declare a queue (durable unless --no-durable) and print its message and consumer counts.',
    positionals: [{ name: 'NAME', description: "Queue name ('' for a server-named queue)" }],
    options: {
      durable: {
        type: 'boolean',
        default: true,
        description: 'Transient: the queue does not survive a broker restart',
      },
      autoDelete: { type: 'boolean', description: 'Delete when the last consumer goes away' },
      type: { type: 'string', value: 'TYPE', choices: ['classic', 'quorum', 'stream'], description: 'x-queue-type' },
      ttl: { type: 'number', integer: true, min: 0, value: 'MS', description: 'x-message-ttl' },
      maxLength: { type: 'number', integer: true, min: 0, value: 'N', description: 'x-max-length' },
      maxPriority: { type: 'number', integer: true, min: 1, value: 'N', description: 'x-max-priority' },
      deadLetterExchange: { type: 'string', value: 'EXCHANGE', description: 'x-dead-letter-exchange' },
      deadLetterRoutingKey: { type: 'string', value: 'KEY', description: 'x-dead-letter-routing-key' },
      singleActiveConsumer: { type: 'boolean', description: 'x-single-active-consumer' },
      arg: {
        type: 'list',
        short: 'a',
        value: 'K=V',
        description: 'Any other argument; K:=JSON for numbers (repeatable)',
      },
      ...GLOBAL_OPTIONS,
    },
    examples: [
      'warren queue declare jobs',
      'warren queue declare orders --type quorum',
      'warren queue declare events --type stream -a x-max-length-bytes:=1000000000',
    ],
  },
  async run({ options: o, positionals }, ctx) {
    const args: FieldTable = parseHeaders(o.arg, '--arg');
    if (o.type !== undefined) args['x-queue-type'] = o.type;
    if (o.ttl !== undefined) args['x-message-ttl'] = o.ttl;
    if (o.maxLength !== undefined) args['x-max-length'] = o.maxLength;
    if (o.maxPriority !== undefined) args['x-max-priority'] = o.maxPriority;
    if (o.deadLetterExchange !== undefined) args['x-dead-letter-exchange'] = o.deadLetterExchange;
    if (o.deadLetterRoutingKey !== undefined) args['x-dead-letter-routing-key'] = o.deadLetterRoutingKey;
    if (o.singleActiveConsumer) args['x-single-active-consumer'] = true;
    if ((o.type === 'quorum' || o.type === 'stream') && !o.durable) {
      throw new UsageError(`${o.type} queues are always durable; drop --no-durable`, 'queue declare');
    }
    return queueMethod(
      o,
      ctx,
      positionals[0]!,
      (ch) => ch.queueDeclare(positionals[0]!, { durable: o.durable, autoDelete: o.autoDelete, arguments: args }),
      (r) => `queue '${r.queue}' declared: ${counts(r)}`,
    );
  },
});

export const queueDelete = command({
  spec: {
    name: 'queue delete',
    summary: 'Delete a queue and print how many messages it held (exit code 4 if it does not exist).',
    positionals: NAME,
    options: {
      ifUnused: { type: 'boolean', description: 'Only if it has no consumers' },
      ifEmpty: { type: 'boolean', description: 'Only if it holds no messages' },
      ...GLOBAL_OPTIONS,
    },
    examples: ['warren queue delete jobs --if-empty'],
  },
  async run({ options: o, positionals }, ctx) {
    const queue = positionals[0]!;
    // RabbitMQ answers delete-ok (0 messages) for a queue that does not exist; a passive declare
    // first fails with 404 NOT_FOUND (exit 4) instead of claiming a deletion.
    await withChannel(o, ctx, (ch) => ch.queueDeclare(queue, { passive: true }));
    return queueMethod(
      o,
      ctx,
      queue,
      (ch) => ch.queueDelete(queue, { ifUnused: o.ifUnused, ifEmpty: o.ifEmpty }),
      (r) => `queue '${queue}' deleted with ${count(r.messageCount, 'message')}`,
    );
  },
});

/** A queue command that takes nothing but the queue's name: one method, its reply printed. */
function nameOnlyCommand<R extends object>(
  name: string,
  summary: string,
  example: string,
  method: (ch: Channel, queue: string) => Promise<R>,
  text: (r: R, queue: string) => string,
) {
  return command({
    spec: { name, summary, positionals: NAME, options: { ...GLOBAL_OPTIONS }, examples: [example] },
    async run({ options: o, positionals }, ctx) {
      const queue = positionals[0]!;
      return queueMethod(
        o,
        ctx,
        queue,
        (ch) => method(ch, queue),
        (r) => text(r, queue),
      );
    },
  });
}

export const queuePurge = nameOnlyCommand(
  'queue purge',
  'Remove every ready message from a queue and print how many.',
  'warren queue purge jobs',
  (ch, queue) => ch.queuePurge(queue),
  (r, queue) => `queue '${queue}' purged: ${count(r.messageCount, 'message')} removed`,
);

export const queueInfo = nameOnlyCommand(
  'queue info',
  'Print the ready-message and consumer counts of a queue (exit code 4 if it does not exist).',
  'warren queue info jobs --json',
  (ch, queue) => ch.queueDeclare(queue, { passive: true }),
  (r) => `queue '${r.queue}': ${counts(r, ' ready')}`,
);
