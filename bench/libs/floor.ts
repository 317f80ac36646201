// Adapter for the floor peer (bench/floor). Publishes are counted, not encoded: every publish of one body to one
// queue is byte-identical (delivery tags are implicit), so one message is encoded once, repeated into a batch
// buffer, and each flush writes a prefix of that buffer. Acks are coalesced into multiple=true acks covering a
// quarter of the prefetch window. This is the least work a client can do per message, hence the "floor".

import { encodePublish, publishHead } from '../floor/codec.js';
import { FloorConnection } from '../floor/connection.js';
import type { Adapter, Closable, ConfirmCallback, RpcClient, Session } from './types.js';

const BATCH_BYTES = 256 * 1024;
const REPLY_TO = 'amq.rabbitmq.reply-to';

class FloorSession implements Session {
  private batch: Buffer = Buffer.alloc(0);
  private batchQueue = '';
  private batchBody: Buffer | undefined;
  private msgLen = 0;
  private batchCap = 0;
  private pending = 0;
  private scheduled = false;
  // Confirm callbacks indexed by delivery tag - base.
  private cbs: Array<ConfirmCallback | undefined> = [];
  private base = 1;
  private head = 0;

  constructor(private readonly c: FloorConnection) {
    c.onFailure = (err) => {
      for (let i = this.head; i < this.cbs.length; i++) this.cbs[i]?.(err);
      this.cbs = [];
    };
  }

  async declareQueue(queue: string): Promise<void> {
    await this.c.queueDeclare(queue);
  }

  async deleteQueue(queue: string): Promise<void> {
    await this.c.queueDelete(queue);
  }

  async confirmSelect(): Promise<void> {
    this.c.onConfirm = (tag, multiple, nack) => this.onConfirm(tag, multiple, nack);
    await this.c.confirmSelect();
  }

  private prepare(queue: string, body: Buffer): void {
    const one = encodePublish(1, queue, body, this.c.frameMax);
    this.msgLen = one.length;
    this.batchCap = Math.max(1, Math.floor(BATCH_BYTES / one.length));
    this.batch = this.batchCap === 1 ? one : Buffer.concat(new Array<Buffer>(this.batchCap).fill(one));
    this.batchQueue = queue;
    this.batchBody = body;
  }

  private readonly flushTick = (): void => {
    this.scheduled = false;
    this.writePending();
  };

  /** Writes every counted publish as one prefix of the batch buffer; returns backpressure if the socket is full. */
  private writePending(): Promise<void> | undefined {
    const n = this.pending;
    if (n === 0) return undefined;
    this.pending = 0;
    const ok = this.c.write(n === this.batchCap ? this.batch : this.batch.subarray(0, n * this.msgLen));
    return ok ? undefined : this.c.drain();
  }

  publish(queue: string, body: Buffer): Promise<void> | undefined {
    if (queue !== this.batchQueue || body !== this.batchBody) {
      this.writePending();
      this.prepare(queue, body);
    }
    if (++this.pending >= this.batchCap) return this.writePending();
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushTick);
    }
    return undefined;
  }

  publishConfirm(queue: string, body: Buffer, done: ConfirmCallback): Promise<void> | undefined {
    if (this.c.failure !== undefined) {
      done(this.c.failure);
      return undefined;
    }
    this.cbs.push(done);
    return this.publish(queue, body);
  }

  private onConfirm(tag: number, multiple: boolean, nack: boolean): void {
    const err = nack ? new Error(`floor: publish ${tag} nacked`) : null;
    const last = tag - this.base;
    const from = multiple ? this.head : last;
    for (let i = from; i <= last; i++) {
      const cb = this.cbs[i];
      if (cb !== undefined) {
        this.cbs[i] = undefined;
        cb(err);
      }
    }
    while (this.head < this.cbs.length && this.cbs[this.head] === undefined) this.head++;
    // Compact now and then so the array does not grow with the run.
    if (this.head > 65536) {
      this.cbs = this.cbs.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
  }

  async flush(): Promise<void> {
    await this.writePending();
    await this.c.drain();
  }

  async consume(queue: string, prefetch: number, onMessage: (bodySize: number) => void): Promise<Closable> {
    await this.c.basicQos(prefetch);
    let last = 0;
    let acked = 0;
    let timer: NodeJS.Timeout | undefined;
    let heldSince = 0;
    let lastAtTimer = 0;
    const flush = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      if (last > acked) {
        this.c.ack(last, true);
        acked = last;
      }
    };
    const expired = (): void => {
      timer = undefined;
      if (last > lastAtTimer && Date.now() - heldSince < 10) {
        lastAtTimer = last;
        timer = setTimeout(expired, 1);
      } else flush();
    };
    // A reader that keeps up with the broker gets a handful of deliveries per socket read; one ack per read would
    // cost a write per few messages here and an ack to process per few messages in the broker. So ack once a
    // quarter of the prefetch window is outstanding (the broker still has three quarters to send meanwhile), once
    // deliveries pause for 1 ms (the tail of a stream), or after 10 ms at most: warren's policy, so that the floor
    // stays the limit.
    const ackEvery = Math.max(1, Math.floor(prefetch / 4));
    this.c.onChunkEnd = () => {
      if (last - acked >= ackEvery) flush();
      else if (last > acked && timer === undefined) {
        heldSince = Date.now();
        lastAtTimer = last;
        timer = setTimeout(expired, 1);
      }
    };
    const tag = await this.c.basicConsume(queue, { noAck: false, wantBody: false }, (deliveryTag, size) => {
      onMessage(size);
      last = deliveryTag;
    });
    return {
      close: async () => {
        flush();
        await this.c.basicCancel(tag);
      },
    };
  }

  async rpcServer(queue: string): Promise<Closable> {
    await this.c.queueDeclare(queue);
    const c = this.c;
    const tag = await c.basicConsume(queue, { noAck: true, wantBody: true }, (_tag, _size, meta) => {
      if (meta?.replyTo === undefined) return;
      const props = meta.correlationId === undefined ? {} : { correlationId: meta.correlationId };
      c.writePublish(publishHead(1, '', meta.replyTo, meta.body.length, props), meta.body);
    });
    return { close: () => c.basicCancel(tag) };
  }

  async rpcClient(): Promise<RpcClient> {
    const c = this.c;
    let seq = 0;
    let waiter: { id: string; resolve: (n: number) => void; reject: (e: Error) => void } | undefined;
    const prevFailure = c.onFailure;
    c.onFailure = (err) => {
      prevFailure?.(err);
      waiter?.reject(err);
      waiter = undefined;
    };
    const tag = await c.basicConsume(REPLY_TO, { noAck: true, wantBody: true }, (_tag, size, meta) => {
      const w = waiter;
      if (w === undefined || meta?.correlationId !== w.id) return;
      waiter = undefined;
      w.resolve(size);
    });
    return {
      via: 'floor: hand-written over direct reply-to',
      call(queue: string, body: Buffer): Promise<number> {
        if (c.failure !== undefined) return Promise.reject(c.failure);
        const id = String(++seq);
        const p = new Promise<number>((resolve, reject) => {
          waiter = { id, resolve, reject };
        });
        c.writePublish(publishHead(1, '', queue, body.length, { correlationId: id, replyTo: REPLY_TO }), body);
        return p;
      },
      close: () => c.basicCancel(tag),
    };
  }

  async openChannel(): Promise<Closable> {
    throw new Error('n/a: the floor speaks on one channel only');
  }

  async publishTo(exchange: string, routingKey: string, body: Buffer): Promise<void> {
    if (!this.c.writePublish(publishHead(1, exchange, routingKey, body.length), body)) await this.c.drain();
  }

  close(): Promise<void> {
    return this.c.close();
  }
}

const adapter: Adapter = {
  name: 'floor',
  async connect(url: string): Promise<Session> {
    return new FloorSession(await FloorConnection.connect(url, { name: 'bench floor' }));
  },
};

export default adapter;
