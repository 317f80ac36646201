// rabbitmq-client: raw channels from `acquire()` for publish/consume (its Publisher/Consumer wrappers add retry
// and recovery that the other libraries' low-level channels do not), and its own RPCClient plus a Consumer that
// replies for the RPC scenario. basicPublish resolves once its encoder stream has written the frames; the
// encoder buffers without bound if nobody waits, so the adapter bounds outstanding writes with a WriteWindow.

import { Connection } from 'rabbitmq-client';
import type { AsyncMessage, Channel } from 'rabbitmq-client';
import {
  type Adapter,
  type Closable,
  type ConfirmCallback,
  type RobustPublisher,
  type RpcClient,
  type Session,
  toError,
} from './types.js';
import { WriteWindow } from './window.js';

/** The library types bodies as `any`; a Buffer is what arrives for messages without a content-type. */
function sizeOf(body: unknown): number {
  if (Buffer.isBuffer(body)) return body.length;
  if (typeof body === 'string') return Buffer.byteLength(body);
  return 0;
}

class RabbitmqClientSession implements Session {
  private readonly window = new WriteWindow();

  constructor(
    private readonly rabbit: Connection,
    private readonly ch: Channel,
  ) {}

  async declareQueue(queue: string): Promise<void> {
    await this.ch.queueDeclare({ queue, durable: false, autoDelete: false, exclusive: false });
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.ch.queueDelete({ queue });
  }

  async confirmSelect(): Promise<void> {
    await this.ch.confirmSelect();
  }

  publish(queue: string, body: Buffer): Promise<void> | undefined {
    return this.window.track(this.ch.basicPublish({ routingKey: queue }, body), body.length);
  }

  publishConfirm(queue: string, body: Buffer, done: ConfirmCallback): Promise<void> | undefined {
    this.ch.basicPublish({ routingKey: queue }, body).then(
      () => done(null),
      (err: unknown) => done(toError(err)),
    );
    return undefined;
  }

  flush(): Promise<void> {
    return this.window.drain();
  }

  async consume(queue: string, prefetch: number, onMessage: (bodySize: number) => void): Promise<Closable> {
    const ch = this.ch;
    await ch.basicQos({ prefetchCount: prefetch });
    const { consumerTag } = await ch.basicConsume({ queue, noAck: false }, (msg: AsyncMessage) => {
      onMessage(sizeOf(msg.body));
      ch.basicAck({ deliveryTag: msg.deliveryTag });
    });
    return {
      close: async () => {
        await ch.basicCancel({ consumerTag });
      },
    };
  }

  async rpcServer(queue: string): Promise<Closable> {
    const consumer = this.rabbit.createConsumer(
      { queue, queueOptions: { queue, durable: false, autoDelete: false } },
      async (msg: AsyncMessage, reply) => {
        await reply(msg.body);
      },
    );
    await new Promise<void>((resolve, reject) => {
      consumer.once('ready', resolve);
      consumer.once('error', (err: unknown) => reject(toError(err)));
    });
    return { close: () => consumer.close() };
  }

  async rpcClient(): Promise<RpcClient> {
    const rpc = this.rabbit.createRPCClient({ confirm: false, timeout: 30_000 });
    return {
      via: 'createRPCClient + createConsumer reply',
      async call(queue: string, body: Buffer): Promise<number> {
        const reply = await rpc.send(queue, body);
        return sizeOf(reply.body);
      },
      close: () => rpc.close(),
    };
  }

  async openChannel(): Promise<Closable> {
    const ch = await this.rabbit.acquire();
    return { close: () => ch.close() };
  }

  async publishTo(exchange: string, routingKey: string, body: Buffer): Promise<void> {
    await this.ch.basicPublish({ exchange, routingKey }, body);
  }

  async close(): Promise<void> {
    await this.ch.close();
    await this.rabbit.close();
  }
}

const adapter: Adapter = {
  name: 'rabbitmq-client',
  async connect(url: string): Promise<Session> {
    const rabbit = new Connection(url);
    // It emits 'error' for connection trouble and retries on its own; an unlistened 'error' would kill the child
    // before the scenario could report why it stalled (the child's watchdog reports the stall instead).
    rabbit.on('error', (err: unknown) => {
      process.stderr.write(`rabbitmq-client: ${String(err)}\n`);
    });
    await rabbit.onConnect(10_000);
    const ch = await rabbit.acquire();
    return new RabbitmqClientSession(rabbit, ch);
  },
  async robustPublisher(url: string, queue: string): Promise<RobustPublisher> {
    const rabbit = new Connection(url);
    rabbit.on('error', () => undefined);
    // Retries are off by default (maxAttempts 1); a user who wants publishes to survive a reconnect raises it.
    // The scenario's own deadline bounds the run, so the cap here only has to be out of reach.
    const pub = rabbit.createPublisher({ confirm: true, maxAttempts: 1_000_000 });
    return {
      via: 'Connection.createPublisher({ confirm: true, maxAttempts })',
      async publish(body: Buffer): Promise<void> {
        await pub.send({ routingKey: queue, durable: true }, body);
      },
      close: async () => {
        await pub.close();
        await rabbit.close();
      },
    };
  },
};

export default adapter;
