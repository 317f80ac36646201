/**
 * `warren bind QUEUE EXCHANGE [KEY]` and `warren unbind QUEUE EXCHANGE [KEY]`.
 *
 * @module
 */
import type { Channel } from '../../channel/channel.js';
import type { FieldTable } from '../../protocol/field-values.js';
import { command, EXIT, emit, GLOBAL_OPTIONS, parseHeaders, withChannel } from '../common.js';

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

/** `bind` or `unbind`: the same arguments, a different queue method. */
function bindingCommand(
  name: 'bind' | 'unbind',
  summary: string,
  examples: string[],
  done: string,
  method: (ch: Channel, queue: string, exchange: string, key: string, args: FieldTable) => Promise<unknown>,
) {
  return command({
    spec: { name, summary, positionals: POSITIONALS, options: OPTIONS, examples },
    async run({ options: o, positionals }, ctx) {
      const [queue, exchange, key = ''] = positionals as [string, string, string?];
      await withChannel(o, ctx, (ch) => method(ch, queue, exchange, key, parseHeaders(o.arg, '--arg')));
      emit(ctx, o.json, `queue '${queue}' ${done} exchange '${exchange}' with key '${key}'`, {
        queue,
        exchange,
        routingKey: key,
      });
      return EXIT.OK;
    },
  });
}

export const bind = bindingCommand(
  'bind',
  'Bind a queue to an exchange with a routing key.',
  ["warren bind errors logs 'app.*.error'", 'warren bind pdfs docs -a x-match=all -a format=pdf'],
  'bound to',
  (ch, queue, exchange, key, args) => ch.queueBind(queue, exchange, key, args),
);

export const unbind = bindingCommand(
  'unbind',
  'Remove a binding between a queue and an exchange.',
  ["warren unbind errors logs 'app.*.error'"],
  'unbound from',
  (ch, queue, exchange, key, args) => ch.queueUnbind(queue, exchange, key, args),
);
