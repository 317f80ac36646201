/**
 * `warren exchange declare NAME TYPE` and `warren exchange delete NAME`.
 *
 * @module
 */
import { command, EXIT, emit, GLOBAL_OPTIONS, parseHeaders, withChannel } from '../common.js';

const NAME = { name: 'NAME', description: 'Exchange name' } as const;

export const exchangeDeclare = command({
  spec: {
    name: 'exchange declare',
    summary: 'Declare an exchange (durable unless --no-durable).',
    positionals: [
      NAME,
      { name: 'TYPE', description: 'direct, fanout, topic, headers, or a plugin type such as x-delayed-message' },
    ],
    options: {
      durable: {
        type: 'boolean',
        default: true,
        description: 'Transient: the exchange does not survive a broker restart',
      },
      autoDelete: { type: 'boolean', description: 'Delete when the last binding goes away' },
      internal: { type: 'boolean', description: 'Only other exchanges may publish to it' },
      arg: { type: 'list', short: 'a', value: 'K=V', description: 'Argument, e.g. alternate-exchange=ae (repeatable)' },
      ...GLOBAL_OPTIONS,
    },
    examples: [
      'warren exchange declare logs fanout',
      'warren exchange declare events topic -a alternate-exchange=unrouted',
    ],
  },
  async run({ options: o, positionals }, ctx) {
    const [exchange, type] = positionals as [string, string];
    await withChannel(o, ctx, (ch) =>
      ch.exchangeDeclare(exchange, type, {
        durable: o.durable,
        autoDelete: o.autoDelete,
        internal: o.internal,
        arguments: parseHeaders(o.arg, '--arg'),
      }),
    );
    emit(ctx, o.json, `exchange '${exchange}' (${type}) declared`, { exchange, type });
    return EXIT.OK;
  },
});

export const exchangeDelete = command({
  spec: {
    name: 'exchange delete',
    summary: 'Delete an exchange.',
    positionals: [
      NAME,
      {
        name: 'TYPE',
        description: 'Ignored; accepted so that a declare line can be turned into a delete',
        optional: true,
      },
    ],
    options: {
      ifUnused: { type: 'boolean', description: 'Only if it has no bindings' },
      ...GLOBAL_OPTIONS,
    },
    examples: ['warren exchange delete logs'],
  },
  async run({ options: o, positionals }, ctx) {
    const exchange = positionals[0]!;
    await withChannel(o, ctx, (ch) => ch.exchangeDelete(exchange, { ifUnused: o.ifUnused }));
    emit(ctx, o.json, `exchange '${exchange}' deleted`, { exchange });
    return EXIT.OK;
  },
});
