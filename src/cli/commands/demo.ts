/**
 * `warren demo` (what `npm start` runs): a guided round trip against the broker, then a short perf.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Message } from '../../channel/message.js';
import { closeQuietly, command, EXIT, GLOBAL_OPTIONS, open, toJson } from '../common.js';
import { formatSummary, type PerfConfig, perfWithProgress } from './perf.js';
import { DIRECT_REPLY_TO } from '../../client/rpc.js';

export const demo = command({
  spec: {
    name: 'demo',
    summary: 'Tour: connect, declare, publish with confirms, consume, RPC, then a short perf run.',
    positionals: [],
    options: {
      duration: { type: 'number', min: 0.1, default: 5, value: 'SECONDS', description: 'Length of the perf run' },
      perf: { type: 'boolean', default: true, description: 'Skip the perf run' },
      ...GLOBAL_OPTIONS,
    },
    examples: ['npm start', 'warren demo --duration 10'],
  },
  async run({ options: o }, ctx) {
    const say = (line: string): void => {
      if (!o.json) ctx.io.stdout.write(`${line}\n`);
    };
    const ms = (t0: number): string => `${(performance.now() - t0).toFixed(1)} ms`;
    const report: Record<string, unknown> = {};

    let t = performance.now();
    const conn = await open(o, ctx);
    try {
      const server = conn.serverProperties;
      const { host, port } = conn.endpoint;
      say(
        `connected to ${host}:${port} (${String(server.product ?? 'broker')} ${String(server.version ?? '')}) in ${ms(t)}`,
      );
      const ch = await conn.openChannel();
      const queue = `warren-demo-${process.pid}`;
      await ch.queueDeclare(queue, { exclusive: true });
      say(`declared exclusive queue '${queue}'`);

      t = performance.now();
      await ch.confirmSelect();
      const bodies: [Buffer, Record<string, unknown>][] = [
        [Buffer.from('hello, warren'), { contentType: 'text/plain' }],
        [Buffer.from(JSON.stringify({ order: 42, items: ['tea', 'scones'] })), { contentType: 'application/json' }],
        [Buffer.from('with headers'), { headers: { source: 'demo', attempt: 1 }, messageId: randomUUID() }],
      ];
      await Promise.all(bodies.map(([body, props]) => ch.basicPublish('', queue, body, props)));
      say(`published ${bodies.length} messages, all confirmed by the broker in ${ms(t)}`);
      report.published = bodies.length;

      t = performance.now();
      const received: Message[] = [];
      await new Promise<void>((resolve, reject) => {
        ch.basicConsume(queue, {}, (msg) => {
          received.push(msg);
          msg.ack();
          if (received.length === bodies.length) resolve();
        }).catch(reject);
      });
      for (const msg of received) {
        const body =
          msg.properties.contentType === 'application/json' ? toJson(msg.json()) : `'${msg.body.toString()}'`;
        const extra = msg.properties.headers ? ` headers ${toJson(msg.properties.headers)}` : '';
        say(`  received #${msg.deliveryTag}: ${body} (${msg.properties.contentType ?? 'no content type'})${extra}`);
      }
      say(`consumed and acknowledged ${received.length} messages in ${ms(t)}`);
      report.consumed = received.length;

      // RPC over direct reply-to: a responder on this connection upper-cases what it gets.
      const rpcQueue = `${queue}.rpc`;
      await ch.queueDeclare(rpcQueue, { exclusive: true });
      await ch.basicConsume(rpcQueue, {}, async (req) => {
        await ch.basicPublish('', req.properties.replyTo ?? '', Buffer.from(req.body.toString().toUpperCase()), {
          correlationId: req.properties.correlationId,
        });
        req.ack();
      });
      const rpcCh = await conn.openChannel();
      const correlationId = randomUUID();
      t = performance.now();
      const reply = await new Promise<Message>((resolve, reject) => {
        rpcCh
          .basicConsume(DIRECT_REPLY_TO, { noAck: true }, (msg) => {
            if (msg.properties.correlationId === correlationId) resolve(msg);
          })
          .then(() =>
            rpcCh.basicPublish('', rpcQueue, Buffer.from('ping'), { replyTo: DIRECT_REPLY_TO, correlationId }),
          )
          .catch(reject);
      });
      say(`rpc round trip: 'ping' -> '${reply.body.toString()}' in ${ms(t)}`);
      report.rpc = reply.body.toString();
      await rpcCh.close();
      await ch.close();
    } finally {
      await closeQuietly(conn);
    }

    if (o.perf && !ctx.signal.aborted) {
      const cfg: PerfConfig = {
        producers: 1,
        consumers: 1,
        size: 12,
        rate: 0,
        duration: o.duration,
        confirm: true,
        maxUnconfirmed: 1000,
        prefetch: 500,
        autoAck: false,
        persistent: false,
        queue: undefined,
        queueType: 'classic',
      };
      say(`\nrunning 'warren perf --confirm --duration ${o.duration}' ...`);
      const result = await perfWithProgress(cfg, ctx, o);
      say(formatSummary(result).trimEnd());
      report.perf = result;
    }
    if (o.json) ctx.io.stdout.write(`${toJson(report)}\n`);
    else say('\nnext: warren --help, docs/cli.md, examples/');
    return EXIT.OK;
  },
});
