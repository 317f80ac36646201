// warren, through the API fixed in DESIGN.md, as its users run it: the built dist/esm (bench/build-warren.ts
// builds it before a run). The module is loaded at run time with a computed specifier so the benchmark
// type-checks before anything is built (reporting "warren not built yet" while dist/esm/index.js is missing); the
// local interfaces below are the contract this adapter relies on, checked against src/ by tsc.

import { existsSync } from 'node:fs';
import type * as WarrenApi from '../../src/index.js';
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

interface WarrenProperties {
  correlationId?: string | undefined;
  replyTo?: string | undefined;
}

interface WarrenMessage {
  body: Buffer;
  properties: WarrenProperties;
  ack(): void;
}

interface WarrenConsumer {
  cancel(): Promise<void>;
}

interface WarrenChannel {
  queueDeclare(name: string, opts: { durable: boolean; exclusive: boolean; autoDelete: boolean }): Promise<unknown>;
  queueDelete(name: string): Promise<unknown>;
  basicQos(prefetchCount: number): Promise<unknown>;
  confirmSelect(): Promise<unknown>;
  basicPublish(exchange: string, routingKey: string, body: Buffer, properties?: WarrenProperties): Promise<unknown>;
  basicConsume(
    queue: string,
    opts: { noAck: boolean },
    onMessage: (msg: WarrenMessage) => void,
  ): Promise<WarrenConsumer>;
  close(): Promise<void>;
}

interface WarrenConnection {
  openChannel(): Promise<WarrenChannel>;
  close(): Promise<void>;
}

interface WarrenClient {
  rpc(queue: string, body: Buffer, opts: { timeout: number }): Promise<unknown>;
  rpcServer(queue: string, handler: (msg: WarrenMessage) => Buffer | Promise<Buffer>): unknown;
  close(): Promise<void>;
}

interface WarrenRobustPublisher {
  publish(exchange: string, routingKey: string, body: Buffer, properties: { deliveryMode: number }): Promise<unknown>;
}

interface WarrenRobustClient {
  publisher(opts: { confirm: boolean; maxUnconfirmed: number }): WarrenRobustPublisher;
  close(): Promise<void>;
}

interface WarrenModule {
  connect(url: string): Promise<WarrenConnection>;
  createClient?: (opts: { urls: string[] }) => unknown;
}

const REPLY_TO = 'amq.rabbitmq.reply-to';

// Type-only, so erased at run time: tsc fails here when src/ drifts from the contract above, while the run-time
// load below still degrades to "warren not built yet" when src/index.ts is absent.
const apiSatisfiesContract: WarrenModule = {} as typeof WarrenApi;
void apiSatisfiesContract;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isModule(v: unknown): v is WarrenModule {
  return isObject(v) && typeof v.connect === 'function';
}

function isRpcClient(v: unknown): v is WarrenClient {
  return (
    isObject(v) && typeof v.rpc === 'function' && typeof v.rpcServer === 'function' && typeof v.close === 'function'
  );
}

function isRobustClient(v: unknown): v is WarrenRobustClient {
  return isObject(v) && typeof v.publisher === 'function' && typeof v.close === 'function';
}

/** A reply may come back as the body itself or as a message carrying it. */
function replySize(reply: unknown): number {
  if (Buffer.isBuffer(reply)) return reply.length;
  if (isObject(reply) && Buffer.isBuffer(reply.body)) return reply.body.length;
  throw new Error('warren rpc: reply is neither a Buffer nor a message with a Buffer body');
}

async function closeHandle(h: unknown): Promise<void> {
  if (!isObject(h)) return;
  if (typeof h.close === 'function') await h.close();
  else if (typeof h.cancel === 'function') await h.cancel();
}

let loaded: WarrenModule | undefined;

async function load(): Promise<WarrenModule> {
  if (loaded !== undefined) return loaded;
  if (!existsSync(new URL('../../dist/esm/index.js', import.meta.url))) {
    throw new Error('warren not built yet (dist/esm/index.js does not exist: npm run build)');
  }
  // A computed specifier keeps tsc from resolving a module that may not be built yet.
  const specifier: string = '../../dist/esm/index.js';
  const mod: unknown = await import(specifier);
  if (!isModule(mod)) throw new Error('warren: dist/esm/index.js does not export connect()');
  loaded = mod;
  return mod;
}

// Loaded with the adapter, as every other adapter imports its library: otherwise the first connect() would pay
// for loading it, and the connections scenario would count that as connection memory. A missing build is
// reported by connect(), which calls load() again.
await load().catch(() => undefined);

class WarrenSession implements Session {
  private readonly window = new WriteWindow();
  private readonly clients: WarrenClient[] = [];

  constructor(
    private readonly mod: WarrenModule,
    private readonly url: string,
    private readonly conn: WarrenConnection,
    private readonly ch: WarrenChannel,
  ) {}

  async declareQueue(queue: string): Promise<void> {
    await this.ch.queueDeclare(queue, { durable: false, exclusive: false, autoDelete: false });
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
    const consumer = await this.ch.basicConsume(queue, { noAck: false }, (msg) => {
      onMessage(msg.body.length);
      msg.ack();
    });
    return { close: () => consumer.cancel() };
  }

  /** The robust client when it has RPC; until then the low-level channel, the way amqplib's adapter does it. */
  private robustClient(): WarrenClient | undefined {
    if (this.mod.createClient === undefined) return undefined;
    const client = this.mod.createClient({ urls: [this.url] });
    if (!isRpcClient(client)) {
      void closeHandle(client);
      return undefined;
    }
    this.clients.push(client);
    return client;
  }

  async rpcServer(queue: string): Promise<Closable> {
    const ch = this.ch;
    // Declared here rather than left to the server so every library's RPC queue has the same arguments.
    await ch.queueDeclare(queue, { durable: false, exclusive: false, autoDelete: false });
    const client = this.robustClient();
    if (client !== undefined) {
      const handle: unknown = await client.rpcServer(queue, (msg) => msg.body);
      // The first calls would go unanswered (and time out) if the consumer were not in place yet.
      if (isObject(handle) && typeof handle.ready === 'function') await handle.ready();
      return { close: () => closeHandle(handle) };
    }
    const consumer = await ch.basicConsume(queue, { noAck: true }, (msg) => {
      const { replyTo, correlationId } = msg.properties;
      if (replyTo === undefined) return;
      ch.basicPublish('', replyTo, msg.body, correlationId === undefined ? {} : { correlationId }).catch(
        () => undefined,
      );
    });
    return { close: () => consumer.cancel() };
  }

  async rpcClient(): Promise<RpcClient> {
    const client = this.robustClient();
    if (client !== undefined) {
      return {
        via: 'createClient().rpc / rpcServer',
        async call(queue: string, body: Buffer): Promise<number> {
          return replySize(await client.rpc(queue, body, { timeout: 30_000 }));
        },
        close: async () => undefined,
      };
    }
    const ch = this.ch;
    let seq = 0;
    const waiting = new Map<string, (size: number) => void>();
    const consumer = await ch.basicConsume(REPLY_TO, { noAck: true }, (msg) => {
      const id = msg.properties.correlationId;
      const resolve = id === undefined ? undefined : waiting.get(id);
      if (id === undefined || resolve === undefined) return;
      waiting.delete(id);
      resolve(msg.body.length);
    });
    return {
      via: 'low-level channel, hand-written over direct reply-to (no createClient().rpc yet)',
      async call(queue: string, body: Buffer): Promise<number> {
        const id = String(++seq);
        const p = new Promise<number>((resolve) => waiting.set(id, resolve));
        await ch.basicPublish('', queue, body, { correlationId: id, replyTo: REPLY_TO });
        return p;
      },
      close: () => consumer.cancel(),
    };
  }

  async openChannel(): Promise<Closable> {
    const ch = await this.conn.openChannel();
    return { close: () => ch.close() };
  }

  async publishTo(exchange: string, routingKey: string, body: Buffer): Promise<void> {
    await this.ch.basicPublish(exchange, routingKey, body);
  }

  async close(): Promise<void> {
    for (const c of this.clients) await c.close();
    await this.conn.close();
  }
}

const adapter: Adapter = {
  name: 'warren',
  async connect(url: string): Promise<Session> {
    const mod = await load();
    const conn = await mod.connect(url);
    const ch = await conn.openChannel();
    return new WarrenSession(mod, url, conn, ch);
  },
  async robustPublisher(url: string, queue: string): Promise<RobustPublisher> {
    const mod = await load();
    const client = mod.createClient?.({ urls: [url] });
    if (!isRobustClient(client)) {
      await closeHandle(client);
      throw new Error('warren: createClient().publisher is not available yet');
    }
    // The window the scenario keeps (100) is below this, so the publisher's own limit never binds.
    const pub = client.publisher({ confirm: true, maxUnconfirmed: 1000 });
    return {
      via: 'createClient().publisher({ confirm: true })',
      async publish(body: Buffer): Promise<void> {
        await pub.publish('', queue, body, { deliveryMode: 2 });
      },
      close: () => client.close(),
    };
  },
};

export default adapter;
