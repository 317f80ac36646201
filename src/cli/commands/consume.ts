/**
 * `warren consume`: prints messages from a queue, acknowledging each only once it was written out.
 *
 * @module
 */
import type { Message } from '../../channel/message.js';
import type { Subscription } from '../../client/subscription.js';
import { ConsumerCancelled, TimeoutError } from '../../errors.js';
import type { FieldTable } from '../../protocol/field-values.js';
import { UsageError } from '../args.js';
import {
  type Context,
  closeClient,
  closeQuietly,
  command,
  EXIT,
  GLOBAL_OPTIONS,
  type GlobalValues,
  messageToJson,
  open,
  openClient,
  toJson,
  countOption,
} from '../common.js';

/** `first`, `last`, `next`, an offset number or an ISO time, as `x-stream-offset` wants it. */
export function streamOffset(raw: string): string | number | Date {
  if (raw === 'first' || raw === 'last' || raw === 'next') return raw;
  if (/^\d+$/.test(raw)) return Number(raw);
  if (/^\d+[smhD]$/.test(raw)) return raw; // an interval such as 10m, understood by RabbitMQ
  const t = Date.parse(raw);
  if (Number.isNaN(t))
    throw new UsageError(
      `--offset takes first, last, next, a number, an interval (10m) or a time, got '${raw}'`,
      'consume',
    );
  return new Date(t);
}

export const consume = command({
  spec: {
    name: 'consume',
    summary: 'Print messages from a queue; exit after COUNT messages, --timeout, or Ctrl-C.',
    details:
      'Each message is acknowledged only after it was written to standard output; messages received but not\n' +
      'printed (past COUNT, or when interrupted) go back to the queue. With --no-ack the broker forgets each\n' +
      'message as it sends it, so what is in flight when the command stops is lost.',
    positionals: [],
    options: {
      queue: { type: 'string', short: 'q', value: 'QUEUE', description: 'Queue to consume from (required)' },
      count: countOption('messages'),
      ack: {
        type: 'boolean',
        default: true,
        description: 'Let the broker consider messages acknowledged as it sends them',
      },
      prefetch: {
        type: 'number',
        integer: true,
        min: 1,
        value: 'N',
        description: 'Unacknowledged messages in flight (default min(COUNT, 100))',
      },
      timeout: {
        type: 'number',
        min: 0,
        value: 'SECONDS',
        description: 'Stop after this long; exit 6 if COUNT was not reached',
      },
      exclusive: { type: 'boolean', description: 'Be the only consumer of the queue' },
      priority: { type: 'number', integer: true, value: 'N', description: 'Consumer priority (x-priority)' },
      offset: {
        type: 'string',
        value: 'OFFSET',
        description: 'Stream queues: first, last, next, a number, 10m, or a time',
      },
      ...GLOBAL_OPTIONS,
    },
    examples: [
      'warren consume -q jobs -n 1',
      'warren consume -q jobs --json | jq .properties.headers',
      'warren consume -q events --offset first -n 100',
    ],
  },

  async run({ options: o }, ctx) {
    if (o.queue === undefined) throw new UsageError('say which queue: -q QUEUE', 'consume');
    const args: FieldTable = {};
    if (o.priority !== undefined) args['x-priority'] = o.priority;
    if (o.offset !== undefined) args['x-stream-offset'] = streamOffset(o.offset);
    const run: ConsumeRun = {
      queue: o.queue,
      limit: o.count ?? Number.POSITIVE_INFINITY,
      prefetch: o.prefetch ?? Math.min(o.count ?? 100, 100),
      args,
      exclusive: o.exclusive,
      line: (msg) => `${o.json ? toJson(messageToJson(msg)) : msg.body.toString('utf8')}\n`,
    };
    const stopper = new Stopper(ctx);
    if (o.timeout !== undefined) {
      const seconds = o.timeout;
      stopper.after(seconds * 1000, (printed) =>
        o.count !== undefined && printed < o.count
          ? new TimeoutError(`only ${printed} of ${o.count} messages arrived within ${seconds} s`)
          : undefined,
      );
    }
    try {
      if (o.ack) await consumeWithAcks(run, stopper, o, ctx);
      else await consumeNoAck(run, stopper, o, ctx);
    } finally {
      stopper.dispose();
    }
    if (stopper.failure !== undefined) throw stopper.failure;
    return EXIT.OK;
  },
});

/** What both ways of consuming need. */
interface ConsumeRun {
  queue: string;
  limit: number;
  prefetch: number;
  args: FieldTable;
  exclusive: boolean;
  line(msg: Message): string;
}

/**
 * When to stop: after COUNT, on Ctrl-C, after --timeout, when stdout closes, or on a failure; the
 * first reason given wins.
 */
class Stopper {
  failure: unknown;
  printed = 0;
  readonly stopped: Promise<void>;
  private resolve!: () => void;
  private timer: NodeJS.Timeout | undefined;
  private readonly ctx: Context;
  private readonly onAbort = (): void => this.stop();
  private readonly onStdoutError = (): void => this.stop();

  constructor(ctx: Context) {
    this.ctx = ctx;
    this.stopped = new Promise((resolve) => (this.resolve = resolve));
    ctx.signal.addEventListener('abort', this.onAbort, { once: true });
    // A closed pipe (`warren consume | head -1`) ends the run; what was not written is not acked.
    ctx.io.stdout.on('error', this.onStdoutError);
  }

  stop(failure?: unknown): void {
    if (failure !== undefined) this.failure ??= failure;
    this.resolve();
  }

  after(ms: number, verdict: (printed: number) => unknown): void {
    this.timer = setTimeout(() => this.stop(verdict(this.printed)), ms);
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    this.ctx.io.stdout.off('error', this.onStdoutError);
  }
}

/** Writes a line; resolves once it has been handed to the OS (then the message may be acked). */
function write(ctx: Context, line: string): Promise<void> {
  return new Promise((resolve, reject) => ctx.io.stdout.write(line, (err) => (err == null ? resolve() : reject(err))));
}

/**
 * The default: the robust client, so a long-running consume survives a broker restart. One handler
 * at a time keeps the order; a message is acked when its handler (the write) resolves.
 */
async function consumeWithAcks(run: ConsumeRun, stopper: Stopper, o: GlobalValues, ctx: Context): Promise<void> {
  const client = await openClient(o, ctx);
  try {
    let sub: Subscription | undefined;
    const handler = async (msg: Message): Promise<void> => {
      stopper.printed++;
      // Cancel before this last message is acked: the subscription stops starting handlers at once,
      // and messages prefetched past COUNT go back to the queue.
      if (stopper.printed >= run.limit) {
        void sub?.cancel();
        stopper.stop();
      }
      await write(ctx, run.line(msg));
    };
    sub = client.consume(run.queue, handler, {
      concurrency: 1,
      prefetch: run.prefetch,
      exclusive: run.exclusive,
      arguments: run.args,
    });
    sub.on('handlerError', (err) => stopper.stop(err));
    sub.on('cancel', (err) => stopper.stop(err));
    await Promise.race([sub.ready(), stopper.stopped]);
    await stopper.stopped;
    await sub.cancel();
  } finally {
    await closeClient(client);
  }
}

/** --no-ack: the broker forgets each message as it sends it; a plain channel does. */
async function consumeNoAck(run: ConsumeRun, stopper: Stopper, o: GlobalValues, ctx: Context): Promise<void> {
  const conn = await open(o, ctx);
  try {
    const ch = await conn.openChannel();
    const consumer = await ch.basicConsume(
      run.queue,
      { noAck: true, exclusive: run.exclusive, arguments: run.args },
      (msg) => {
        if (stopper.printed >= run.limit) return; // in flight when the limit was reached: lost, as --no-ack says
        stopper.printed++;
        write(ctx, run.line(msg)).catch((err: unknown) => stopper.stop(err));
        if (stopper.printed >= run.limit) stopper.stop();
      },
    );
    consumer.on('cancel', ({ serverCancelled, error }) => {
      if (serverCancelled) stopper.stop(new ConsumerCancelled(run.queue));
      else stopper.stop(error);
    });
    await stopper.stopped;
    if (consumer.isActive) await consumer.cancel().catch(() => {});
    if (ch.isOpen) await ch.close();
  } finally {
    await closeQuietly(conn);
  }
}
