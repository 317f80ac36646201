/**
 * `warren publish`: publishes one message (or one per stdin line) with publisher confirms.
 *
 * @module
 */
import type { Channel } from '../../channel/channel.js';
import type { Connection } from '../../connect.js';
import { ChannelClosedByServer, MessageReturned, PublishNacked, REPLY_CODES } from '../../errors.js';
import type { BasicProperties } from '../../protocol/generated/properties.js';
import { UsageError } from '../args.js';
import {
  closeQuietly,
  command,
  EXIT,
  emit,
  exitCodeOf,
  formatError,
  GLOBAL_OPTIONS,
  open,
  parseHeaders,
  readAll,
  readLines,
} from '../common.js';

/** How many publishes may await their confirm at once with `--lines`: bounds memory on a long stdin. */
const WINDOW = 1000;

/**
 * Makes sure `queue` exists: a passive declare, and a durable declare if it is missing. A passive
 * check first means an existing queue is used as it is, whatever its arguments, instead of failing
 * with 406 because our declare differs from the one that created it.
 */
export async function ensureQueue(conn: Connection, queue: string): Promise<'existed' | 'created'> {
  const probe = await conn.openChannel();
  try {
    await probe.queueDeclare(queue, { passive: true });
    await probe.close();
    return 'existed';
  } catch (err) {
    if (!(err instanceof ChannelClosedByServer && err.replyCode === REPLY_CODES.NOT_FOUND)) throw err;
  }
  const ch = await conn.openChannel();
  await ch.queueDeclare(queue, { durable: true });
  await ch.close();
  return 'created';
}

export const publish = command({
  spec: {
    name: 'publish',
    summary: 'Publish messages with publisher confirms and report how many the broker confirmed.',
    details:
      'The body is the BODY argument, else standard input (all of it, or one message per line with --lines).\n' +
      'Messages are mandatory by default, so a message no queue receives is reported instead of dropped.',
    positionals: [{ name: 'BODY', description: "Message body ('-' or absent: read standard input)", optional: true }],
    options: {
      queue: { type: 'string', short: 'q', value: 'QUEUE', description: 'Publish to this queue (default exchange)' },
      exchange: { type: 'string', short: 'e', value: 'EXCHANGE', description: 'Publish to this exchange' },
      key: { type: 'string', short: 'k', value: 'KEY', description: 'Routing key (with -e)' },
      declare: { type: 'boolean', description: 'Declare the queue (durable) first if it does not exist' },
      header: { type: 'list', short: 'H', value: 'K=V', description: 'Header; K:=JSON for a typed value (repeatable)' },
      persistent: { type: 'boolean', description: 'Persistent delivery mode (2)' },
      contentType: { type: 'string', value: 'TYPE', description: 'content_type property' },
      correlationId: { type: 'string', value: 'ID', description: 'correlation_id property' },
      messageId: { type: 'string', value: 'ID', description: 'message_id property' },
      replyTo: { type: 'string', value: 'QUEUE', description: 'reply_to property' },
      expiration: { type: 'number', integer: true, min: 0, value: 'MS', description: 'Per-message TTL in ms' },
      priority: { type: 'number', integer: true, min: 0, value: 'N', description: 'priority property (0-255)' },
      type: { type: 'string', value: 'TYPE', description: 'type property' },
      lines: { type: 'boolean', description: 'Read standard input and publish one message per line' },
      count: { type: 'number', integer: true, min: 1, default: 1, description: 'Publish the body this many times' },
      mandatory: {
        type: 'boolean',
        default: true,
        description: 'Drop unroutable messages silently instead of failing',
      },
      ...GLOBAL_OPTIONS,
    },
    examples: [
      'warren publish -q jobs --declare "hello"',
      'warren publish -e amq.topic -k logs.error -H source=cli -H retries:=3 \'{"level":"error"}\'',
      'seq 1 1000 | warren publish -q numbers --lines --persistent',
    ],
  },

  async run({ options: o, positionals }, ctx) {
    if (o.queue !== undefined && o.exchange !== undefined) {
      throw new UsageError('give either -q QUEUE or -e EXCHANGE, not both', 'publish');
    }
    if (o.queue === undefined && o.exchange === undefined) {
      throw new UsageError('say where to publish: -q QUEUE or -e EXCHANGE', 'publish');
    }
    if (o.key !== undefined && o.queue !== undefined) {
      throw new UsageError('-k goes with -e; with -q the routing key is the queue name', 'publish');
    }
    if (o.declare && o.queue === undefined) throw new UsageError('--declare needs -q QUEUE', 'publish');
    if (o.lines && positionals.length > 0 && positionals[0] !== '-') {
      throw new UsageError('--lines reads standard input; drop the BODY argument', 'publish');
    }
    if (o.priority !== undefined && o.priority > 255) throw new UsageError('--priority must be 0-255', 'publish');
    const exchange = o.exchange ?? '';
    const routingKey = o.queue ?? o.key ?? '';
    const properties: BasicProperties = {};
    if (o.header.length > 0) properties.headers = parseHeaders(o.header);
    if (o.persistent) properties.deliveryMode = 2;
    if (o.contentType !== undefined) properties.contentType = o.contentType;
    if (o.correlationId !== undefined) properties.correlationId = o.correlationId;
    if (o.messageId !== undefined) properties.messageId = o.messageId;
    if (o.replyTo !== undefined) properties.replyTo = o.replyTo;
    if (o.expiration !== undefined) properties.expiration = String(o.expiration);
    if (o.priority !== undefined) properties.priority = o.priority;
    if (o.type !== undefined) properties.type = o.type;

    // Read a single body before connecting, so a slow producer on stdin holds no connection open.
    let single: Buffer | undefined;
    if (!o.lines) {
      if (positionals.length > 0 && positionals[0] !== '-') single = Buffer.from(positionals[0]!, 'utf8');
      else {
        if (ctx.io.stdin.isTTY) ctx.io.stderr.write('warren: reading the body from standard input; end with Ctrl-D\n');
        single = await readAll(ctx.io.stdin);
      }
    }

    const conn = await open(o, ctx);
    let published = 0;
    let confirmed = 0;
    let failed = 0;
    let firstError: unknown;
    try {
      if (o.declare && o.queue !== undefined) await ensureQueue(conn, o.queue);
      const ch: Channel = await conn.openChannel();
      await ch.confirmSelect();
      let outstanding = 0;
      let wake: (() => void) | undefined;
      const settle = (): void => {
        outstanding--;
        if (wake !== undefined && outstanding < WINDOW) {
          const w = wake;
          wake = undefined;
          w();
        }
      };
      const send = async (body: Buffer): Promise<void> => {
        if (!ch.isOpen) throw ch.closeReason ?? new Error('channel closed');
        published++;
        outstanding++;
        ch.basicPublish(exchange, routingKey, body, properties, { mandatory: o.mandatory }).then(
          () => {
            confirmed++;
            settle();
          },
          (err: unknown) => {
            failed++;
            firstError ??= err;
            settle();
          },
        );
        if (outstanding >= WINDOW) await new Promise<void>((resolve) => (wake = resolve));
      };
      if (single !== undefined) {
        for (let i = 0; i < o.count; i++) await send(single);
      } else {
        for await (const line of readLines(ctx.io.stdin)) {
          for (let i = 0; i < o.count; i++) await send(Buffer.from(line, 'utf8'));
          if (ctx.signal.aborted) break;
        }
      }
      while (outstanding > 0) await new Promise<void>((resolve) => (wake = resolve));
      // A channel-level refusal (404 no such exchange) is the real story: let it be the error.
      if (!ch.isOpen && ch.closeReason instanceof ChannelClosedByServer) throw ch.closeReason;
      await ch.close();
    } finally {
      await closeQuietly(conn);
    }

    const target = o.queue !== undefined ? `queue '${o.queue}'` : `exchange '${exchange}' with key '${routingKey}'`;
    emit(
      ctx,
      o.json,
      `published ${published} message${published === 1 ? '' : 's'} to ${target}: ${confirmed} confirmed` +
        (failed > 0 ? `, ${failed} not confirmed` : ''),
      { published, confirmed, failed, exchange, routingKey },
    );
    if (failed > 0) {
      ctx.io.stderr.write(`${formatError(firstError, 'warren publish', o.json)}\n`);
      if (firstError instanceof MessageReturned && o.queue !== undefined && !o.json) {
        ctx.io.stderr.write(`hint: is there a queue '${o.queue}'? --declare creates it\n`);
      }
      if (firstError instanceof MessageReturned || firstError instanceof PublishNacked) return EXIT.NOT_CONFIRMED;
      return exitCodeOf(firstError);
    }
    return ctx.signal.aborted ? EXIT.INTERRUPTED : EXIT.OK;
  },
});
