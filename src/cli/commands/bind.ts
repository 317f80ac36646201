/**
 * `warren bind QUEUE EXCHANGE [KEY]` and `warren unbind QUEUE EXCHANGE [KEY]`.
 *
 * @module
 */
import { command, EXIT, emit, GLOBAL_OPTIONS, parseHeaders } from '../common.js';
import { withChannel } from './queue.js';

const POSITIONALS = [
  { name: 'QUEUE', description: 'Queue name' },
  { name: 'EXCHANGE', description: 'Exchange name' },
  { name: 'KEY', description: "Routing key or pattern (default '')", optional: true },
] as const;

const OPTIONS = {
  arg: {
    type: 'list',
    short: 'a',
    value: 'K=V',
    description: 'Binding argument, e.g. for headers exchanges (repeatable)',
  },
  ...GLOBAL_OPTIONS,
} as const;

export const bind = command({
  spec: {
    name: 'bind',
    summary: 'Bind a queue to an exchange with a routing key.',
    positionals: POSITIONALS,
    options: OPTIONS,
    examples: ["warren bind errors logs 'app.*.error'", 'warren bind pdfs docs -a x-match=all -a format=pdf'],
  },
  async run({ options: o, positionals }, ctx) {
    const [queue, exchange, key = ''] = positionals as [string, string, string?];
    await withChannel(o, ctx, (ch) => ch.queueBind(queue, exchange, key, parseHeaders(o.arg, '--arg')));
    emit(ctx, o.json, `queue '${queue}' bound to exchange '${exchange}' with key '${key}'`, {
      queue,
      exchange,
      routingKey: key,
    });
    return EXIT.OK;
  },
});

export const unbind = command({
  spec: {
    name: 'unbind',
    summary: 'Remove a binding between a queue and an exchange.',
    positionals: POSITIONALS,
    options: OPTIONS,
    examples: ["warren unbind errors logs 'app.*.error'"],
  },
  async run({ options: o, positionals }, ctx) {
    const [queue, exchange, key = ''] = positionals as [string, string, string?];
    await withChannel(o, ctx, (ch) => ch.queueUnbind(queue, exchange, key, parseHeaders(o.arg, '--arg')));
    emit(ctx, o.json, `queue '${queue}' unbound from exchange '${exchange}' with key '${key}'`, {
      queue,
      exchange,
      routingKey: key,
    });
    return EXIT.OK;
  },
});
