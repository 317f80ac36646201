/**
 * Type tests of the public API (checked by `tsc -p test/types`, part of `npm run lint`). Nothing here
 * runs: a line fails the check if its types are wrong, and every `@ts-expect-error` line fails the
 * check if the call it marks ever compiles.
 */
import {
  AMQPError,
  type Channel,
  ChannelClosedByServer,
  type Client,
  type ClientEvents,
  CodecRegistry,
  type Decoded,
  ConnectionError,
  type ConsumerCancelled,
  type Connection,
  connect,
  createClient,
  HandshakeError,
  InvalidArgumentError,
  type Message,
  MessageReturned,
  type Publisher,
  type Subscription,
  type SubscriptionEvents,
  TimeoutError,
  UserCodeError,
} from 'warren';

/** Compiles only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | undefined {
  return undefined;
}

declare const client: Client;
declare const conn: Connection;
declare const ch: Channel;
declare const msg: Message;
declare const subscription: Subscription;
declare const unknownError: unknown;

// --- the robust client
export function robustClient(): void {
  const c: Client = createClient({ urls: ['amqp://127.0.0.1'], name: 'svc' });
  createClient('amqp://127.0.0.1');
  // @ts-expect-error a misspelled option
  createClient({ urls: ['amqp://127.0.0.1'], heartbeats: 10 });
  // @ts-expect-error a port is not a URL
  createClient(5672);

  const p: Publisher = c.publisher({ confirm: true });
  expectType<Equal<ReturnType<Publisher['publish']>, Promise<void>>>();
  void p.publish('', 'q', Buffer.from('x'), { deliveryMode: 2 });
  void p.publish('', 'q', 'a string body');
  // @ts-expect-error a number is not a body
  void p.publish('', 'q', 42);

  const sub: Subscription = c.consume('q', async (m) => {
    expectType<Equal<typeof m, Decoded<unknown>>>();
    m satisfies Message;
    m.json<{ a: number }>().a.toFixed();
  });
  // @ts-expect-error the handler gets a Message, not a string
  c.consume('q', (m: string) => m);
  void sub.cancel();

  expectType<Equal<ReturnType<Client['rpc']>, Promise<Decoded<unknown>>>>();
  c.consume<{ id: number }>('q', async (m) => {
    expectType<Equal<typeof m.value, { id: number }>>();
    m.body satisfies Buffer;
  });
  void c.rpc<{ sum: number }>('q', [1, 2]).then((reply) => reply.value.sum.toFixed());
  void p.publish('', 'q', { id: 1 }, { contentType: 'application/json' });
  createClient({
    codecs: new CodecRegistry([{ contentType: 'text/plain', encode: (s: string) => s, decode: String }]),
  });
  // @ts-expect-error a codec needs decode()
  new CodecRegistry([{ contentType: 'text/plain', encode: (s: string) => s }]);
  // @ts-expect-error timeout is a number of milliseconds
  void c.rpc('q', 'x', { timeout: '1s' });
}

// --- event maps: listeners get the arguments the map says; unknown events do not compile
export function events(): void {
  client.on('connect', (info) => {
    expectType<Equal<typeof info, { url: string; generation: number }>>();
  });
  client.on('disconnect', (error) => {
    expectType<Equal<typeof error, AMQPError>>();
  });
  client.on('connectFailed', (error, info) => {
    expectType<Equal<typeof error, AMQPError>>();
    info.url satisfies string;
  });
  client.once('close', () => {});
  expectType<Equal<ClientEvents['blocked'], [reason: string]>>();
  // @ts-expect-error no such event
  client.on('connected', () => {});
  // @ts-expect-error connect's listener gets an info object, not a string
  client.on('connect', (info: string) => info);

  subscription.on('cancel', (err) => {
    expectType<Equal<typeof err, ConsumerCancelled>>();
    err.queue satisfies string;
  });
  subscription.on('retriesExhausted', (_err, m, attempts) => {
    expectType<Equal<[typeof m, typeof attempts], [Message, number]>>();
  });
  expectType<Equal<SubscriptionEvents['handlerError'], [error: unknown, message: Message]>>();

  conn.on('close', () => {});
  // @ts-expect-error no such event on a connection
  conn.on('reconnect', () => {});
  ch.on('return', (returned) => {
    returned.body satisfies Buffer;
  });
}

// --- error narrowing: instanceof gives each class's own fields
export function narrowing(): void {
  if (unknownError instanceof ChannelClosedByServer) {
    unknownError.replyCode satisfies number;
    unknownError.replyText satisfies string;
    unknownError.recoverable satisfies boolean;
  }
  if (unknownError instanceof MessageReturned) unknownError.message satisfies string;
  if (unknownError instanceof HandshakeError) expectType<Equal<typeof unknownError, HandshakeError>>();
  if (unknownError instanceof AMQPError) {
    unknownError.code satisfies string;
    if (unknownError instanceof ConnectionError) expectType<Equal<typeof unknownError, ConnectionError>>();
    // @ts-expect-error only ConsumerCancelled has a queue
    void unknownError.queue;
  }
  if (unknownError instanceof UserCodeError) unknownError.source satisfies string;
  if (unknownError instanceof TimeoutError || unknownError instanceof InvalidArgumentError) {
    expectType<Equal<typeof unknownError, TimeoutError | InvalidArgumentError>>();
  }
  const e = new InvalidArgumentError('bad');
  e satisfies AMQPError;
  // @ts-expect-error errors take a message
  new InvalidArgumentError(42);
}

// --- the low-level API
export async function lowLevel(): Promise<void> {
  const c = await connect('amqp://guest:guest@127.0.0.1:5672', { heartbeat: 30 });
  const channel = await c.openChannel();
  const q = await channel.queueDeclare('', { exclusive: true });
  expectType<Equal<typeof q.queue, string>>();
  await channel.basicPublish('', q.queue, Buffer.from('x'), { contentType: 'text/plain' });
  const got = await channel.basicGet(q.queue);
  expectType<Equal<typeof got, Message | null>>();
  // @ts-expect-error the low-level channel takes a Buffer
  await channel.basicPublish('', q.queue, 'x');
  // @ts-expect-error a misspelled option
  await channel.queueDeclare('q', { durible: true });
  msg.ack();
  // @ts-expect-error internal members are not part of the published types
  channel.inbound;
  await c.close();
}
