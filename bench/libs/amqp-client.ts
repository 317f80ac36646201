// @cloudamqp/amqp-client: low-level AMQPClient channels for publish/consume, and its own AMQPSession RPC helpers
// (rpcServer / rpcClient over direct reply-to) for the RPC scenario, since that is what its users reach for.
// basicPublish resolves once the socket has taken the frames (or, in confirm mode, on the broker's ack); the
// library itself never pushes back, so the adapter bounds outstanding writes with a WriteWindow.

import { AMQPClient, AMQPSession } from '@cloudamqp/amqp-client';
import type { AMQPChannel, AMQPMessage } from '@cloudamqp/amqp-client';
import {
  type Adapter,
  type Closable,
  type ConfirmCallback,
  type RobustPublisher,
  type RpcClient,
  type Session,
  toError,
} from './types.js';
import { untilConfirmed } from './retry.js';
import { WriteWindow } from './window.js';

class AmqpClientSession implements Session {
  private readonly window = new WriteWindow();
  private readonly sessions: AMQPSession[] = [];

  constructor(
    private readonly url: string,
    private readonly conn: AMQPClient,
    private readonly ch: AMQPChannel,
  ) {}

  async declareQueue(queue: string): Promise<void> {
    await this.ch.queueDeclare(queue, { durable: false, autoDelete: false, exclusive: false });
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.ch.queueDelete(queue);
  }

  async confirmSelect(): Promise<void> {
    await this.ch.confirmSelect();
  }

  publish(queue: string, body: Buffer): Promise<void> | undefined {
    return this.window.track(this.ch.basicPublish('', queue, body), body.length);
  }

  publishConfirm(queue: string, body: Buffer, done: ConfirmCallback): Promise<void> | undefined {
    this.ch.basicPublish('', queue, body).then(
      () => done(null),
      (err: unknown) => done(toError(err)),
    );
    return undefined;
  }

  flush(): Promise<void> {
    return this.window.drain();
  }

  async consume(queue: string, prefetch: number, onMessage: (bodySize: number) => void): Promise<Closable> {
    await this.ch.basicQos(prefetch);
    const consumer = await this.ch.basicConsume(queue, { noAck: false }, (msg: AMQPMessage) => {
      onMessage(msg.bodySize);
      // ack() returns a promise for the socket write; a consumer that awaited it would serialise on writes.
      msg.ack().catch(() => undefined);
    });
    return {
      close: async () => {
        await consumer.cancel();
      },
    };
  }

  async rpcServer(queue: string): Promise<Closable> {
    const session = await AMQPSession.connect(this.url);
    this.sessions.push(session);
    const server = await session.rpcServer(queue, (msg: AMQPMessage) => msg.body);
    return { close: () => server.close() };
  }

  async rpcClient(): Promise<RpcClient> {
    const session = await AMQPSession.connect(this.url);
    this.sessions.push(session);
    const client = await session.rpcClient();
    return {
      via: 'AMQPSession.rpcClient / rpcServer',
      async call(queue: string, body: Buffer): Promise<number> {
        const reply = await client.call(queue, body, { timeout: 30_000 });
        return reply.bodySize;
      },
      close: () => client.close(),
    };
  }

  async openChannel(): Promise<Closable> {
    const ch = await this.conn.channel();
    return { close: () => ch.close() };
  }

  async publishTo(exchange: string, routingKey: string, body: Buffer): Promise<void> {
    await this.ch.basicPublish(exchange, routingKey, body);
  }

  async close(): Promise<void> {
    for (const s of this.sessions) await s.stop();
    await this.conn.close();
  }
}

const adapter: Adapter = {
  name: 'amqp-client',
  async connect(url: string): Promise<Session> {
    const conn = new AMQPClient(url);
    await conn.connect();
    const ch = await conn.channel();
    return new AmqpClientSession(url, conn, ch);
  },
  async robustPublisher(url: string, queue: string): Promise<RobustPublisher> {
    // AMQPSession reconnects and re-acquires its confirm channel, but a publish caught by a cut rejects.
    const session = await AMQPSession.connect(url, { logger: null });
    const q = await session.queue(queue, { durable: true, autoDelete: false, exclusive: false });
    let closed = false;
    return {
      via: 'AMQPSession.queue().publish (confirm), retried on rejection',
      publish: (body: Buffer) =>
        untilConfirmed(
          () => q.publish(body, { deliveryMode: 2 }),
          () => closed,
        ),
      close: () => {
        closed = true;
        return session.stop();
      },
    };
  },
};

export default adapter;
