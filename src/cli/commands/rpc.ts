/**
 * `warren rpc -q QUEUE BODY`: one request over direct reply-to, prints the reply.
 *
 * @module
 */
import type { Message } from '../../channel/message.js';
import { MessageReturned, REPLY_CODES, TimeoutError } from '../../errors.js';
import type { BasicProperties } from '../../protocol/generated/properties.js';
import { UsageError } from '../args.js';
import {
  closeClient,
  command,
  EXIT,
  emit,
  GLOBAL_OPTIONS,
  messageToJson,
  openClient,
  parseHeaders,
  readAll,
} from '../common.js';

export const rpc = command({
  spec: {
    name: 'rpc',
    summary: 'Send a request to a queue and print the reply (direct reply-to).',
    positionals: [{ name: 'BODY', description: "Request body ('-' or absent: read standard input)", optional: true }],
    options: {
      queue: { type: 'string', short: 'q', value: 'QUEUE', description: 'The server’s request queue (required)' },
      timeout: {
        type: 'number',
        min: 0,
        default: 10,
        value: 'SECONDS',
        description: 'Give up after this long (exit 6)',
      },
      header: { type: 'list', short: 'H', value: 'K=V', description: 'Request header; K:=JSON for typed (repeatable)' },
      contentType: { type: 'string', value: 'TYPE', description: 'content_type of the request' },
      ...GLOBAL_OPTIONS,
    },
    examples: ['warren rpc -q rpc.echo hello', "warren rpc -q fib '30' --timeout 2"],
  },
  async run({ options: o, positionals }, ctx) {
    if (o.queue === undefined) throw new UsageError('say which queue: -q QUEUE', 'rpc');
    const body =
      positionals.length > 0 && positionals[0] !== '-'
        ? Buffer.from(positionals[0]!, 'utf8')
        : await readAll(ctx.io.stdin);
    const properties: BasicProperties = {};
    if (o.header.length > 0) properties.headers = parseHeaders(o.header);
    if (o.contentType !== undefined) properties.contentType = o.contentType;
    const client = await openClient(o, ctx);
    try {
      const started = performance.now();
      let reply: Message;
      try {
        reply = await client.rpc(o.queue, body, { timeout: o.timeout * 1000, properties, signal: ctx.signal });
      } catch (err) {
        if (err instanceof TimeoutError) {
          throw new TimeoutError(`no reply from '${o.queue}' within ${o.timeout} s; is a server consuming it?`, {
            cause: err,
          });
        }
        if (err instanceof MessageReturned && err.replyCode === REPLY_CODES.NO_ROUTE) {
          // The request is mandatory inside client.rpc(); this command has no such flag to drop.
          err.message =
            `no queue '${o.queue}' took the request (312 NO_ROUTE): is its server running? ` +
            `(to try: warren rpc-server -q ${o.queue} --echo)`;
        }
        throw err;
      }
      const ms = performance.now() - started;
      if (o.json) emit(ctx, true, '', { ...messageToJson(reply), ms: Math.round(ms * 1000) / 1000 });
      else ctx.io.stdout.write(`${reply.body.toString('utf8')}\n`);
    } finally {
      await closeClient(client);
    }
    return EXIT.OK;
  },
});
