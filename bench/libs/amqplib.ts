// amqplib through its promise API, used the way its documentation shows: publish returns false when the channel
// buffer is full and the caller waits for 'drain'; ConfirmChannel takes a per-publish callback. The same code
// drives warren/amqplib (see warren-amqplib.ts): only the module handed to amqplibAdapter() differs.

import amqp from 'amqplib';
import amqpcm from 'amqp-connection-manager';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import {
  type Adapter,
  type Closable,
  type ConfirmCallback,
  type LibName,
  type RobustPublisher,
  type RpcClient,
  type Session,
  toError,
} from './types.js';
import { untilConfirmed } from './retry.js';

/** What the adapter uses of an amqplib-compatible module, in amqplib's own types. */
export interface AmqplibModule {
  connect(url: string): Promise<ChannelModel>;
}

const REPLY_TO = 'amq.rabbitmq.reply-to';

function once(ch: Channel, event: 'drain'): Promise<void> {
  return new Promise<void>((resolve) => ch.once(event, () => resolve()));
}

class AmqplibSession implements Session {
  private ch: Channel;
  private confirmCh: ConfirmChannel | undefined;
  private failure: Error | undefined;

  constructor(
    private readonly conn: ChannelModel,
    ch: Channel,
  ) {
    this.ch = ch;
    // An unlistened 'error' would kill the child; record it so the scenario fails with the reason instead.
    conn.on('error', (err: Error) => {
      this.failure ??= err;
    });
    ch.on('error', (err: Error) => {
      this.failure ??= err;
    });
  }

  async declareQueue(queue: string): Promise<void> {
    await this.ch.assertQueue(queue, { durable: false, autoDelete: false, exclusive: false });
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.ch.deleteQueue(queue);
  }

  async confirmSelect(): Promise<void> {
    const cc = await this.conn.createConfirmChannel();
    cc.on('error', (err: Error) => {
      this.failure ??= err;
    });
    this.confirmCh = cc;
  }

  publish(queue: string, body: Buffer): Promise<void> | undefined {
    return this.ch.sendToQueue(queue, body) ? undefined : once(this.ch, 'drain');
  }

  publishConfirm(queue: string, body: Buffer, done: ConfirmCallback): Promise<void> | undefined {
    const cc = this.confirmCh;
    if (cc === undefined) throw new Error('confirmSelect first');
    const ok = cc.sendToQueue(queue, body, {}, (err: unknown) => done(err == null ? null : toError(err)));
    return ok ? undefined : once(cc, 'drain');
  }

  async flush(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
  }

  async consume(queue: string, prefetch: number, onMessage: (bodySize: number) => void): Promise<Closable> {
    const ch = this.ch;
    await ch.prefetch(prefetch);
    const { consumerTag } = await ch.consume(
      queue,
      (msg: ConsumeMessage | null) => {
        if (msg === null) return;
        onMessage(msg.content.length);
        ch.ack(msg);
      },
      { noAck: false },
    );
    return {
      close: async () => {
        await ch.cancel(consumerTag);
      },
    };
  }

  async rpcServer(queue: string): Promise<Closable> {
    const ch = this.ch;
    await ch.assertQueue(queue, { durable: false, autoDelete: false });
    const { consumerTag } = await ch.consume(
      queue,
      (msg: ConsumeMessage | null) => {
        if (msg === null) return;
        const replyTo: unknown = msg.properties.replyTo;
        const correlationId: unknown = msg.properties.correlationId;
        if (typeof replyTo !== 'string') return;
        ch.sendToQueue(replyTo, msg.content, typeof correlationId === 'string' ? { correlationId } : {});
      },
      { noAck: true },
    );
    return {
      close: async () => {
        await ch.cancel(consumerTag);
      },
    };
  }

  async rpcClient(): Promise<RpcClient> {
    const ch = this.ch;
    let seq = 0;
    const waiting = new Map<string, (size: number) => void>();
    const { consumerTag } = await ch.consume(
      REPLY_TO,
      (msg: ConsumeMessage | null) => {
        if (msg === null) return;
        const id: unknown = msg.properties.correlationId;
        if (typeof id !== 'string') return;
        const resolve = waiting.get(id);
        if (resolve === undefined) return;
        waiting.delete(id);
        resolve(msg.content.length);
      },
      { noAck: true },
    );
    return {
      via: 'hand-written over direct reply-to (amqplib has no RPC helper)',
      call(queue: string, body: Buffer): Promise<number> {
        const id = String(++seq);
        const p = new Promise<number>((resolve) => waiting.set(id, resolve));
        ch.sendToQueue(queue, body, { correlationId: id, replyTo: REPLY_TO });
        return p;
      },
      close: async () => {
        await ch.cancel(consumerTag);
      },
    };
  }

  async openChannel(): Promise<Closable> {
    const ch = await this.conn.createChannel();
    ch.on('error', () => undefined);
    return { close: () => ch.close() };
  }

  async publishTo(exchange: string, routingKey: string, body: Buffer): Promise<void> {
    if (!this.ch.publish(exchange, routingKey, body)) await once(this.ch, 'drain');
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

/**
 * amqplib has no reconnect of its own; amqp-connection-manager is what its users add for that. Its defaults are
 * kept (a 5 s reconnect wait among them), as every library here runs with its own defaults.
 */
async function robustPublisher(url: string, queue: string): Promise<RobustPublisher> {
  const manager = amqpcm.connect([url]);
  // Unlistened, these would be thrown; the scenario measures the outcome, so they are only swallowed.
  manager.on('connectFailed', () => undefined);
  manager.on('disconnect', () => undefined);
  const cw = manager.createChannel({ confirm: true });
  cw.on('error', () => undefined);
  let closed = false;
  return {
    // It queues publishes while disconnected, but rejects those a cut caught unconfirmed ("channel closed").
    via: 'amqp-connection-manager ChannelWrapper.sendToQueue (confirm channel), retried on rejection',
    publish: (body: Buffer) =>
      untilConfirmed(
        () => cw.sendToQueue(queue, body, { persistent: true }),
        () => closed,
      ),
    close: async () => {
      closed = true;
      await cw.close();
      await manager.close();
    },
  };
}

/** The adapter over `lib`, which is amqplib or a drop-in for it. */
export function amqplibAdapter(name: LibName, lib: AmqplibModule): Adapter {
  return {
    name,
    async connect(url: string): Promise<Session> {
      const conn = await lib.connect(url);
      const ch = await conn.createChannel();
      return new AmqplibSession(conn, ch);
    },
  };
}

export default { ...amqplibAdapter('amqplib', amqp), robustPublisher } satisfies Adapter;
